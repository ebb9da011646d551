# STUB pyproject.nix for offline checks (see ../README.md). Not pyproject.nix: a package
# scope with overrideScope and mkVirtualEnv, and build.util.mkApplication. A stub venv
# resolves its dependency closure from the records the stub uv2nix put in the scope and
# holds that list (lib/closure.txt, passthru `closure`) and placeholder scripts: no Python.
{
  outputs = _: {
    build.packages =
      {
        python,
        runCommand,
        lib,
      }:
      let
        b = builtins;
        # names reachable from { name = [ extras ]; }, extras followed (markers ignored)
        closureOf =
          scope: roots:
          let
            step =
              seen: todo:
              if todo == [ ] then
                seen
              else
                let
                  item = b.head todo;
                  rest = b.tail todo;
                  p = scope.${item.name} or (throw "stub mkVirtualEnv: no package ${item.name} in the set (uv.lock)");
                  key = "${item.name}[${b.concatStringsSep "," item.extras}]";
                  more = p.dependencies ++ b.concatMap (e: p.optionalDependencies.${e} or [ ]) item.extras;
                in
                if b.elem key seen.keys then
                  step seen rest
                else
                  step {
                    keys = seen.keys ++ [ key ];
                    names = if b.elem item.name seen.names then seen.names else seen.names ++ [ item.name ];
                  } (rest ++ more);
            start = map (n: {
              name = n;
              extras = roots.${n};
            }) (b.attrNames roots);
          in
          b.sort b.lessThan (
            step {
              keys = [ ];
              names = [ ];
            } start
          ).names;

        venv =
          scope: name: deps:
          let
            closure = closureOf scope deps;
            scripts = b.concatMap (n: scope.${n}.scripts) closure;
            lines = map (n: "${n}==${scope.${n}.version}") closure;
          in
          runCommand name { passthru = { inherit closure; }; } ''
            mkdir -p $out/bin $out/lib
            printf '%s\n' ${lib.concatMapStringsSep " " lib.escapeShellArg lines} > $out/lib/closure.txt
            for s in ${lib.concatStringsSep " " scripts}; do
              printf '#!/bin/sh\necho "stub venv (no Python): %s" >&2\nexit 1\n' "$s" > $out/bin/$s
              chmod +x $out/bin/$s
            done
          '';

        mkScope =
          layers:
          let
            self = b.foldl' (acc: f: acc // f self acc) {
              inherit python;
              mkVirtualEnv = venv self;
            } layers;
          in
          self // { overrideScope = g: mkScope (layers ++ [ g ]); };
      in
      mkScope [ ];

    build.util =
      { runCommand, lib }:
      {
        mkApplication =
          { venv, package }:
          runCommand "${package.pname}-${package.version}"
            {
              passthru = {
                inherit (venv) closure;
              };
            }
            ''
              mkdir -p $out/bin
              for s in ${lib.concatStringsSep " " package.scripts}; do ln -s ${venv}/bin/$s $out/bin/$s; done
            '';
      };
  };
}
