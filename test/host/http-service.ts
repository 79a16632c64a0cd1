/**
 * A Nix expression for a tiny HTTP service without nixpkgs: `bin/<name>` runs Debian's node on a server that
 * answers `<name> <version>` (and `ok` on /healthz) on 127.0.0.1:$PORT. Arguments: `name`, `version`, and an
 * optional store-name `prefix`. Used where a test or the demo builds through a build command (push).
 */
export const HTTP_SERVICE_NIX = `{ name, version, prefix ? "svc" }: derivation {
  name = "\${prefix}-\${name}-\${version}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" ''
    mkdir -p $out/bin
    echo "require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : '\${name} \${version}' + String.fromCharCode(10))).listen(Number(process.env.PORT), '127.0.0.1');" > $out/server.js
    printf '#!/bin/sh\\nexec /usr/bin/node %s/server.js "$@"\\n' $out > $out/bin/\${name}
    chmod +x $out/bin/\${name}
  '' ];
}
`;
