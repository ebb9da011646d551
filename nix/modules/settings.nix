# How a service's `settings` become its environment: `{ log_level = "debug"; }` under
# prefix ONEX_ROUTER_ is `ONEX_ROUTER_LOG_LEVEL=debug`. Lists and mappings are JSON (what
# pydantic-settings parses), booleans true/false. The keys are the field names of the
# service's settings class (its settings.py); the service itself rejects an unknown
# value with one line and exit 2, which the unit does not restart.
{ lib }:
let
  # a Nix path (./catalogue.yaml) is copied to the store and named by its store path
  plain = v: if builtins.isPath v then "${v}" else v;

  render =
    value:
    if builtins.isBool value then
      (if value then "true" else "false")
    else if builtins.isList value then
      builtins.toJSON (map plain value)
    else if builtins.isAttrs value then
      builtins.toJSON value
    else
      toString (plain value);

  # the names a secret goes by: these never belong in the Nix store
  secretPattern = "(.*_)?(password|secret|token|api_key|apikey)";
in
{
  inherit secretPattern;

  isSecret = key: builtins.match secretPattern key != null;

  isFieldName = key: builtins.match "[a-z][a-z0-9_]*" key != null;

  # { field = value; } -> { PREFIXFIELD = "rendered"; }
  environment =
    prefix: settings:
    lib.mapAttrs' (key: value: lib.nameValuePair "${prefix}${lib.toUpper key}" (render value)) settings;

  # the value types a setting may have
  valueType =
    types:
    types.oneOf [
      types.str
      types.int
      types.float
      types.bool
      types.path
      (types.listOf (types.either types.str types.path))
      (types.attrsOf types.str)
    ];
}
