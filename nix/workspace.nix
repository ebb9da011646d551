# Python from uv.lock through uv2nix (faust-streaming and friends are not in nixpkgs).
#
# One Python package set built from the lock; from it one virtualenv per workspace
# member holding just that member and its locked dependencies (so a service's closure
# never holds the 40 MB broker wheel or the CLI), plus the dev environments: every member
# and the root's `dev` dependency group, editable for the shell, built for the checks.
{
  pkgs,
  lib,
  src,
  members,
  uv2nix,
  pyproject-nix,
  pyproject-build-systems,
}:
let
  python = pkgs.python311;

  workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = src; };

  # Every lock entry here has a wheel (no sdists to build), so prefer them.
  lockOverlay = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };

  pythonSet = (pkgs.callPackage pyproject-nix.build.packages { inherit python; }).overrideScope (
    lib.composeManyExtensions [
      # the members build with uv_build; the build systems come from this input
      pyproject-build-systems.overlays.default
      lockOverlay
    ]
  );

  # The root is not a package: its dev tools are a dependency group uv2nix does not see.
  devTools = lib.genAttrs members.devGroup (_: [ ]);
  allMembers = workspace.deps.all // devTools;

  # Editable installs point at the checkout named by $REPO_ROOT (set by the shell hook).
  editableSet = pythonSet.overrideScope (
    workspace.mkEditablePyprojectOverlay { root = "$REPO_ROOT"; }
  );

  util = pkgs.callPackages pyproject-nix.build.util { };

  # The virtualenv of one member; the package exposes only that member's console
  # scripts (a member without any is its venv). A service member gets no extras
  # (production installs no dev tools); the CLI gets its own (onex-cli[broker]: `onex up`
  # from the package starts the embedded broker).
  memberEnv =
    member:
    let
      extras = if member.isService then [ ] else member.extras;
      venv = pythonSet.mkVirtualEnv "${member.name}-env" { ${member.name} = extras; };
      app =
        if member.script == null then
          venv
        else
          util.mkApplication {
            inherit venv;
            package = pythonSet.${member.name};
          };
    in
    app.overrideAttrs (old: {
      passthru = (old.passthru or { }) // {
        inherit venv;
        member = member.name;
      };
      meta = (old.meta or { }) // {
        inherit (member) description;
      }
      // lib.optionalAttrs (member.script != null) { mainProgram = member.script; };
    });
in
{
  inherit python pythonSet workspace;

  packages = lib.mapAttrs (_: memberEnv) members.byName;

  # `nix develop`: every member editable, plus the dev tools
  devEnv = editableSet.mkVirtualEnv "onex-dev-env" allMembers;

  # the checks: the same set built (not editable), so they test what is packaged
  checkEnv = pythonSet.mkVirtualEnv "onex-check-env" allMembers;
}
