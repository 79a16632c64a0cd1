/**
 * A fast yes/no validator compiled from a valibot schema. Valibot builds datasets and output copies as it goes,
 * which costs tens of milliseconds on a 1,000-service manifest; a valid manifest needs none of that. The
 * acceptor answers "valid?" without allocating, and only a rejected input goes through valibot for its
 * issues. It reads the same schema object, so there is one source of truth; the schema kinds it does not know
 * make compilation throw, so a schema change cannot silently weaken validation (and a property test checks
 * that acceptor and valibot agree).
 */

type Acceptor = (value: unknown) => boolean;

/** The parts of valibot schema and action objects the acceptor reads. */
interface Node {
  kind: 'schema' | 'validation' | 'metadata' | 'transformation';
  type: string;
  pipe?: Node[];
  entries?: Record<string, Node>;
  item?: Node;
  key?: Node;
  value?: Node;
  wrapped?: Node & { default?: unknown };
  options?: unknown[];
  literal?: unknown;
  requirement?: unknown;
  check?: (value: unknown) => boolean;
  default?: unknown;
}

const isObjectLike = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Compiles a valibot schema into an {@link Acceptor}; throws for schema kinds it does not implement. */
export function compileAcceptor(schema: unknown): Acceptor {
  const node = schema as Node;
  if (node.pipe) {
    const [head, ...actions] = node.pipe;
    const steps = [compileAcceptor(head), ...actions.filter((a) => a.kind !== 'metadata').map(compileStep)];
    if (steps.length === 1) return steps[0] as Acceptor;
    return (v) => {
      for (let i = 0; i < steps.length; i++) if (!(steps[i] as Acceptor)(v)) return false;
      return true;
    };
  }
  return compileBase(node);
}

/** A schema without its pipe (a pipe's first element is the schema itself, with `pipe` set). */
function compileBase(node: Node): Acceptor {
  switch (node.type) {
    case 'string':
      return (v) => typeof v === 'string';
    case 'number':
      return (v) => typeof v === 'number' && !Number.isNaN(v);
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'literal': {
      const literal = node.literal;
      return (v) => v === literal;
    }
    case 'picklist': {
      const options = node.options as unknown[];
      return (v) => options.includes(v);
    }
    case 'custom': {
      const check = node.check as (v: unknown) => boolean;
      return (v) => check(v);
    }
    case 'optional': {
      if (node.default !== undefined) throw new Error('acceptor: optional() with a default is not supported');
      const inner = compileAcceptor(node.wrapped);
      return (v) => v === undefined || inner(v);
    }
    case 'array': {
      const item = compileAcceptor(node.item);
      return (v) => {
        if (!Array.isArray(v)) return false;
        for (let i = 0; i < v.length; i++) if (!item(v[i])) return false;
        return true;
      };
    }
    case 'record': {
      const key = compileAcceptor(node.key);
      const value = compileAcceptor(node.value);
      return (v) => {
        if (!isObjectLike(v)) return false;
        for (const k in v) {
          if (!Object.hasOwn(v, k) || UNSAFE_KEYS.has(k)) continue; // valibot skips these keys, so must we
          if (!key(k) || !value(v[k])) return false;
        }
        return true;
      };
    }
    case 'strict_object': {
      // One pass over the input's keys: unknown key → reject; then every required key must have been seen.
      // (Equivalent to valibot's two passes for JSON data, which has no inherited enumerable keys.)
      const schemas = node.entries as Record<string, Node>;
      const index = new Map<string, { accept: Acceptor; required: boolean }>();
      for (const [key, schema] of Object.entries(schemas)) {
        index.set(key, { accept: compileAcceptor(schema), required: schema.type !== 'optional' });
      }
      const requiredCount = [...index.values()].filter((e) => e.required).length;
      return (v) => {
        if (!isObjectLike(v)) return false;
        let seen = 0;
        for (const key in v) {
          const entry = index.get(key);
          if (entry === undefined || !entry.accept(v[key])) return false;
          if (entry.required) seen++;
        }
        return seen === requiredCount;
      };
    }
    case 'union': {
      const options = (node.options as Node[]).map(compileAcceptor);
      return (v) => {
        for (let i = 0; i < options.length; i++) if ((options[i] as Acceptor)(v)) return true;
        return false;
      };
    }
    default:
      throw new Error(`acceptor: unsupported valibot schema type "${node.type}"`);
  }
}

/** One validation action of a pipe; runs only on a value the steps before accepted, as valibot does. */
function compileStep(node: Node): Acceptor {
  if (node.kind === 'schema') return compileAcceptor(node);
  const req = node.requirement;
  switch (node.type) {
    case 'regex': {
      const re = req as RegExp;
      if (re.global || re.sticky) throw new Error('acceptor: stateful (g/y) regexes are not supported');
      return (v) => re.test(v as string);
    }
    case 'check':
    case 'integer':
    case 'finite':
      return (v) => (req as (v: unknown) => boolean)(v);
    case 'min_value':
      return (v) => (v as number) >= (req as number);
    case 'max_value':
      return (v) => (v as number) <= (req as number);
    case 'min_length':
      return (v) => (v as { length: number }).length >= (req as number);
    case 'max_length':
      return (v) => (v as { length: number }).length <= (req as number);
    default:
      throw new Error(`acceptor: unsupported valibot action "${node.type}"`);
  }
}
