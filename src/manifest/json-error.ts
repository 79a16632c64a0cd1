/** Where and why a text is not JSON. */
export interface JsonSyntaxError {
  /** 1-based line. */
  line: number;
  /** 1-based column (in UTF-16 code units, as editors count them). */
  column: number;
  /** What the parser expected and found, without echoing the document. */
  message: string;
}

/** Deeper documents are reported instead of overflowing the stack. */
const MAX_DEPTH = 1000;

class Stop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/**
 * Finds the first JSON syntax error in `text`, or `undefined` when it is valid JSON. Exists because Node's
 * `JSON.parse` messages sometimes omit the position and echo the whole input (which may hold secrets).
 */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const peek = () => text[i];
  const found = () => (i >= text.length ? 'end of input' : JSON.stringify(text[i]));
  const fail = (what: string): never => {
    throw new Stop(i, `expected ${what}, found ${found()}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail(`"${word}"`);
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      const ch = peek();
      if (ch === undefined) fail("a closing '\"'");
      if (ch === '"') {
        i++;
        return;
      }
      if (ch === '\\') {
        i++;
        const esc = peek();
        if (esc === 'u') {
          i++;
          for (let k = 0; k < 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail('4 hex digits after \\u');
            i++;
          }
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i++;
        else fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
      } else if ((ch as string) < ' ')
        fail('no raw control character inside a string (use an escape such as \\n)');
      else i++;
    }
  };
  const number = () => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) fail('a number');
    i += (m as RegExpExecArray)[0].length;
  };
  let depth = 0;
  /** A `{...}` or `[...]` body after its opening bracket; `member` parses one entry. */
  const container = (close: '}' | ']', member: () => void, after: string) => {
    if (++depth > MAX_DEPTH) throw new Stop(i, `nesting deeper than ${MAX_DEPTH} levels`);
    i++;
    ws();
    if (peek() !== close) {
      for (;;) {
        member();
        ws();
        if (peek() !== ',') break;
        i++;
      }
      if (peek() !== close) fail(`',' or '${close}' after ${after}`);
    }
    i++;
    depth--;
  };
  const property = () => {
    ws();
    if (peek() !== '"') fail('a double-quoted property name');
    string();
    ws();
    if (peek() !== ':') fail("':' after a property name");
    i++;
    value();
  };
  const value = (): void => {
    ws();
    const ch = peek();
    if (ch === '{') container('}', property, 'a property value');
    else if (ch === '[') container(']', value, 'an array element');
    else if (ch === '"') string();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) number();
    else fail('a JSON value');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('end of input after the JSON value');
    return undefined;
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
    return { ...lineAndColumn(text, error.offset), message: error.message };
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < offset; k++) {
    if (text[k] === '\n') {
      line++;
      lineStart = k + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
