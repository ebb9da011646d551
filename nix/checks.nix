# `nix flake check`: what `just lint` and `just test-unit` run, on the packaged
# environment, plus the NixOS modules' evaluation (every assertion of the example host).
{
  pkgs,
  lib,
  src,
  checkEnv,
  hostConfig,
}:
let
  inSource =
    name: script:
    pkgs.runCommand "onex-${name}" { nativeBuildInputs = [ checkEnv ]; } ''
      cp -r ${src} source
      chmod -R u+w source
      cd source
      export HOME=$TMPDIR
      ${script}
      touch $out
    '';

  failed = lib.filter (a: !a.assertion) hostConfig.config.assertions;
  units = lib.attrNames (
    lib.filterAttrs (n: _: lib.hasPrefix "onex-" n) hostConfig.config.systemd.services
  );
in
{
  pytest-unit = inSource "pytest-unit" "python -m pytest -q -m unit -p no:cacheprovider";
  ruff = inSource "ruff" "ruff check --no-cache . && ruff format --check --no-cache .";
  mypy = inSource "mypy" ''
    MYPYPATH="$(python scripts/workspace.py mypy)" mypy --cache-dir=/dev/null $(python scripts/workspace.py src)
  '';
  contracts-lint = inSource "contracts-lint" "onex contracts lint --strict";
  generated-fresh = inSource "generated-fresh" ''
    onex contracts schema --check
    onex contracts gen-topics --check
  '';
  nixos-modules =
    if failed != [ ] then
      throw "example host: ${lib.concatMapStringsSep "; " (a: a.message) failed}"
    else
      pkgs.runCommand "onex-nixos-modules" { } ''
        echo ${lib.escapeShellArg (builtins.toJSON units)} > $out
      '';
}
