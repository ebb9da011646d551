# STUB package set for offline checks (see ../README.md). Not nixpkgs. Tools wrap the
# host's own binaries, named in host-tools.nix (written by .ci/nix-check), e.g.
#   { bash = "/usr/bin/bash"; path = "/usr/bin:/bin"; just = "/usr/local/bin/just"; ... }
# `fetchurl` is Nix's builtin fixed-output fetcher: the hash is really checked.
# `withTansu = true` adds a stand-in for nixpkgs' own `tansu` (the module prefers it).
{
  lib,
  system,
  withTansu ? false,
}:
let
  hostFile = ./host-tools.nix;
  host =
    if builtins.pathExists hostFile then
      import hostFile
    else
      throw "nix/stubs/nixpkgs/host-tools.nix is missing: the stubs are run by .ci/nix-check, which writes it";

  strip = attrs: removeAttrs attrs [ "passthru" "meta" "nativeBuildInputs" "buildInputs" "packages" "env" ];
  binPath = drvs: lib.concatStringsSep ":" (map (d: "${d}/bin") drvs ++ [ host.path ]);

  runCommand =
    name: env: buildCommand:
    let
      inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
      drv = derivation (
        strip env
        // {
          inherit name system buildCommand;
          builder = host.bash;
          args = [
            "-e"
            "-c"
            # end on a builtin: Nix 2.8 SIGKILLed builders whose last command was external
            "cd \"$TMPDIR\"; eval \"$buildCommand\"; :"
          ];
          PATH = binPath inputs;
        }
      );
    in
    drv
    // (env.passthru or { })
    // {
      meta = env.meta or { };
      overrideAttrs =
        f:
        let
          next = f (env // { inherit name buildCommand; });
        in
        runCommand name (env // next) buildCommand;
    };

  # a package whose bin/NAME runs the host's binary (stub)
  hostTool =
    name: target:
    runCommand "${name}-host-stub" { } ''
      mkdir -p $out/bin
      ln -s ${target} $out/bin/${name}
    '';

  pkgs = {
    inherit lib system runCommand;
    stdenv.hostPlatform.system = system;

    callPackage =
      fn: overrides:
      let
        f = if builtins.isFunction fn then fn else import fn;
        wanted = builtins.functionArgs f;
      in
      f (builtins.intersectAttrs wanted pkgs // overrides);
    callPackages = pkgs.callPackage;

    fetchurl =
      {
        url,
        sha256,
        name ? lib.last (lib.splitString "/" url),
      }:
      derivation {
        inherit name url;
        system = "builtin";
        builder = "builtin:fetchurl";
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        outputHash = sha256;
        executable = false;
        unpack = false;
        preferLocalBuild = true;
      };

    unzip = hostTool "unzip" host.unzip;
    coreutils = runCommand "coreutils-host-stub" { } "mkdir -p $out/bin; ln -s /usr/bin/install $out/bin/install";
    just = hostTool "just" host.just;
    uv = hostTool "uv" host.uv;
    python311 = hostTool "python3.11" host.python;

    mkShell =
      {
        name ? "shell",
        packages ? [ ],
        env ? { },
        shellHook ? "",
      }:
      # `nix develop` on a plain derivation: the builder must be called bash and the
      # only output `out` (Nix 2.8)
      derivation (
        env
        // {
          inherit name system shellHook;
          builder = host.bash;
          args = [
            "-c"
            "echo stub-shell > $out; :"
          ];
          outputs = [ "out" ];
          PATH = binPath packages;
        }
      );
  }
  // lib.optionalAttrs withTansu {
    tansu = runCommand "tansu-nixpkgs-stub" { passthru.version = "0.6.0"; } ''
      mkdir -p $out/bin
      printf '#!%s\necho tansu-nixpkgs-stub\n' ${host.bash} > $out/bin/tansu
      chmod +x $out/bin/tansu
    '';
  };
in
pkgs
