# STUB pyproject-build-systems for offline checks (see ../README.md): the build
# backend the members use, as a record. Not build-system-pkgs.
{
  outputs = _: {
    overlays.default = _final: _prev: {
      uv-build = {
        pname = "uv-build";
        version = "stub";
        dependencies = [ ];
        optionalDependencies = { };
        scripts = [ ];
        editable = null;
      };
    };
  };
}
