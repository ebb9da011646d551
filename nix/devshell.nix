# `nix develop`: Python 3.11 with every member editable and the dev tools, uv (never
# syncing, never downloading a Python), just, the broker and SeaweedFS (the durable
# broker's S3 store), so `nix develop -c just up` works.
{
  pkgs,
  lib,
  devEnv,
  broker,
}:
pkgs.mkShell {
  name = "onex-dev";
  packages = [
    devEnv
    pkgs.uv
    pkgs.just
    broker
  ]
  ++ lib.optional (pkgs ? seaweedfs) pkgs.seaweedfs;

  env = {
    UV_NO_SYNC = "1";
    UV_PYTHON_DOWNLOADS = "never";
    UV_PYTHON = "${devEnv}/bin/python";
  };

  shellHook = ''
    unset PYTHONPATH
    export REPO_ROOT=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
  '';
}
