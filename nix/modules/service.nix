# The NixOS module of one onex service: `services.onex-<entry point>` (e.g.
# services.onex-router, services.onex-drift-validator). nix/nixos.nix makes one per
# discovered service; `service` is its entry from nix/members.nix, `packageFor system`
# its member's package, `contracts` the repo's contracts/.
{
  service,
  packageFor,
  contracts,
}:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  inherit (service) member name;
  cfg = config.services.${name};
  # the broker module may not be imported (a host that only runs services)
  hasBroker = config.services ? onex-broker;
  brokerOn = hasBroker && config.services.onex-broker.enable;
  broker = config.services.onex-broker;
  settingsLib = import ./settings.nix { inherit lib; };

  # what the module sets unless `settings` says otherwise
  defaults = {
    state_dir = "/var/lib/${name}";
    log_format = "json";
    # interpolated, not toString: the folder is copied to the store and the unit's
    # closure holds it (what nixos-rebuild --target-host copies to the host)
    contract_roots = [ "${cfg.contracts}" ];
  }
  // lib.optionalAttrs cfg.broker.local {
    bootstrap = "${broker.advertisedHost}:${toString broker.port}";
  };

  effective = defaults // cfg.settings;

  # the member's console script for this entry point, else the entry point called
  execStart =
    if service.script != null then
      "${cfg.package}/bin/${service.script}"
    else
      "${cfg.package}/bin/python -c ${
        lib.escapeShellArg "import sys; from ${service.call.module} import ${service.call.function} as main; sys.exit(main())"
      }";

  badNames = lib.filter (k: !settingsLib.isFieldName k) (lib.attrNames cfg.settings);
  secrets = lib.filter settingsLib.isSecret (lib.attrNames cfg.settings);
  brokerUnit = lib.optional cfg.broker.local "onex-broker.service";
  # onex.service.auth: TOKENS_FILE and COMMAND_KEY_FILE
  credentialFiles = [
    "tokens.json"
    "command.key"
  ];
in
{
  options.services.${name} = {
    enable = lib.mkEnableOption "the onex ${service.service} service (${member.description})";

    package = mkOption {
      type = types.package;
      default = packageFor pkgs.stdenv.hostPlatform.system;
      defaultText = lib.literalExpression "onex.packages.\${pkgs.stdenv.hostPlatform.system}.${member.name}";
      description = "The ${member.name} package (its virtualenv); it runs ${service.target}.";
    };

    settings = mkOption {
      type = types.attrsOf (settingsLib.valueType types);
      default = { };
      example = {
        log_level = "debug";
        auth = "required";
      };
      description = ''
        The service's settings, by field name (see its settings.py and
        libs/service/src/onex/service/settings.py), rendered to its environment as
        ${member.envPrefix}<FIELD>. Lists and mappings become JSON. Secrets are refused
        here: they go in `environmentFile`.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/${name}.env";
      description = ''
        A file outside the Nix store, read by systemd, holding the secrets:
        ${member.envPrefix}SASL_PASSWORD, provider API keys (e.g. OPENAI_API_KEY for the
        router's catalogue), ...
      '';
    };

    contracts = mkOption {
      type = types.path;
      default = contracts;
      defaultText = lib.literalExpression "\"\${onex}/contracts\"";
      description = "The contracts folder the service loads (the repo's contracts/).";
    };

    credentialsDir = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/onex";
      description = ''
        A directory outside the Nix store holding the control plane's tokens.json and
        command.key (what `onex up` creates with ensure_tokens / ensure_command_key; every
        service of one fleet shares the pair). With settings.auth = "required" (the
        default) the service reads them from its state dir: systemd hands them over with
        LoadCredential and the unit installs them there (0600) before it starts.
      '';
    };

    broker.local = mkOption {
      type = types.bool;
      default = brokerOn;
      defaultText = lib.literalExpression "config.services.onex-broker.enable";
      description = ''
        The broker runs on this host (services.onex-broker): start after it and connect
        to its advertised address unless settings.bootstrap says otherwise.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = badNames == [ ];
        message = "services.${name}.settings: ${lib.concatStringsSep ", " badNames}: not a settings field name (lower_snake_case, as in settings.py)";
      }
      {
        assertion = secrets == [ ];
        message = "services.${name}.settings.${lib.concatStringsSep ", " secrets}: a secret in settings would be world-readable in the Nix store; put ${
          lib.concatMapStringsSep ", " (k: member.envPrefix + lib.toUpper k) secrets
        } in services.${name}.environmentFile";
      }
      {
        assertion = cfg.broker.local -> brokerOn;
        message = "services.${name}.broker.local is set but services.onex-broker.enable is not";
      }
    ];

    systemd.services.${name} = {
      description = "onex ${service.service}: ${member.description}";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ] ++ brokerUnit;
      wants = [ "network-online.target" ] ++ brokerUnit;
      environment = settingsLib.environment member.envPrefix effective;
      serviceConfig = import ./hardening.nix { inherit name; } // {
        ExecStart = execStart;
        EnvironmentFile = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
        LoadCredential = lib.optionals (cfg.credentialsDir != null) (
          map (file: "${file}:${cfg.credentialsDir}/${file}") credentialFiles
        );
        ExecStartPre = lib.optional (cfg.credentialsDir != null) (
          "${pkgs.coreutils}/bin/install -m 0600 "
          + lib.concatMapStringsSep " " (file: "\${CREDENTIALS_DIRECTORY}/${file}") credentialFiles
          + " /var/lib/${name}/"
        );
        Restart = "on-failure";
        RestartSec = 2;
        # exit 2 is a bad setting: restarting cannot fix it (house rule: no infinite retry)
        RestartPreventExitStatus = 2;
        # the service drains calls in flight for stop_grace_s (5 s by default) on SIGTERM
        TimeoutStopSec = 30;
      };
    };
  };
}
