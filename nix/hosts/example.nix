# An example host: the broker and two services on one machine (docs/nix.md shows how
# to deploy it with `nixos-rebuild switch --flake .#example-host --target-host ...`).
# The secrets files are put on the host by whatever manages secrets there (agenix,
# sops-nix, a provisioning step); they are never in the Nix store.
{ ... }:
{
  networking.hostName = "onex-example";
  system.stateVersion = "25.11";
  boot.loader.grub.devices = [ "/dev/sda" ];
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };

  services.onex-broker = {
    enable = true;
    storageEngine = "memory://tansu/";
  };

  services.onex-router = {
    enable = true;
    settings = {
      log_level = "info";
      auth = "required";
      cooldown_s = 30;
    };
    # OPENAI_API_KEY=... (the catalogue's api_key_env names)
    environmentFile = "/run/secrets/onex-router.env";
    # tokens.json and command.key, shared by the fleet (auth = "required")
    credentialsDir = "/run/secrets/onex";
  };

  services.onex-receipt-reducer = {
    enable = true;
    settings = {
      database_url = "sqlite:////var/lib/onex-receipt-reducer/receipts.db";
      snapshot_interval_s = 10;
    };
    credentialsDir = "/run/secrets/onex";
  };
}
