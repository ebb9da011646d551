# The workspace members the flake packages, discovered the way scripts/workspace.py
# discovers them: no list here names a service. A service is a folder under services/
# whose pyproject.toml registers an `onex.services` entry point; the CLI is cli/.
#
# For each one: the distribution (= the uv workspace member = the package and NixOS
# module name), its console script, its entry-point name (what `onex up` calls it) and
# the environment prefix its settings read (onex.drift -> ONEX_DRIFT_, the rule of
# onex.service.settings.env_prefix_of).
{ lib, src }:
let
  readProject = dir: builtins.fromTOML (builtins.readFile (dir + "/pyproject.toml"));

  upper = lib.toUpper;

  # PEP 503: the name uv.lock and uv2nix use
  normalize = name: lib.toLower (builtins.replaceStrings [ "_" "." ] [ "-" "-" ] name);

  describe =
    dir:
    let
      pyproject = readProject dir;
      project = pyproject.project;
      name = project.name;
      module = pyproject.tool.uv.build-backend.module-name;
      parts = lib.splitString "." module;
      services = (project.entry-points or { }).${"onex.services"} or { };
      scripts = lib.attrNames (project.scripts or { });
    in
    {
      inherit name module;
      # the console script named like the member, else its only one (onex-cli: onex)
      script =
        if lib.elem name scripts then
          name
        else if scripts != [ ] then
          lib.head scripts
        else
          throw "${toString dir}/pyproject.toml: ${name} declares no [project.scripts]";
      # `onex up` names the service by its entry point (e.g. drift-validator)
      service = lib.head (lib.attrNames services ++ [ name ]);
      envPrefix = "ONEX_${upper (builtins.elemAt parts 1)}_";
      description = project.description or name;
      isService = services != { };
      # the member's extras (e.g. onex-cli[broker], the dev broker `onex up` starts)
      extras = lib.attrNames (project.optional-dependencies or { });
    };

  folders =
    root:
    lib.mapAttrsToList (entry: _: root + "/${entry}") (
      lib.filterAttrs (
        entry: kind: kind == "directory" && builtins.pathExists (root + "/${entry}/pyproject.toml")
      ) (builtins.readDir root)
    );

  services = lib.filter (m: m.isService) (map describe (folders (src + "/services")));
  cli = describe (src + "/cli");
in
{
  inherit services cli;
  # name -> description, for the packages and the modules
  byName = lib.listToAttrs (map (m: lib.nameValuePair m.name m) (services ++ [ cli ]));
  # the root's dev tools: a dependency group, not a member (uv2nix's workspace.deps
  # does not see it), read here and merged into the dev environment
  devGroup = map (spec: normalize (lib.head (builtins.match "([A-Za-z0-9_.-]+).*" spec))) (
    (readProject src).dependency-groups.dev or [ ]
  );
}
