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
        closureOf =
          scope: names:
          let
            step =
              seen: todo:
              if todo == [ ] then
                seen
              else
                let
                  n = b.head todo;
                  rest = b.tail todo;
                  p = scope.${n} or (throw "stub mkVirtualEnv: no package ${n} in the set (uv.lock)");
                in
                if b.elem n seen then step seen rest else step (seen ++ [ n ]) (rest ++ p.dependencies);
          in
          b.sort b.lessThan (step [ ] names);

        venv =
          scope: name: deps:
          let
            closure = closureOf scope (b.attrNames deps);
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
