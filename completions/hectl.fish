# fish completion for hectl.
# Generated from the click commands by `python -m hectl.cli.scripts completions`; do not edit.
# Static parts are pure shell; dynamic values come from `hectl __complete KIND PREFIX`.

set -g __hectl_commands 'hectl' 'hectl add-console-password' 'hectl check-liveliness' 'hectl clean-metadata' 'hectl cluster-config' 'hectl cluster-config install-key' 'hectl cluster-config rotate-key' 'hectl cluster-config set' 'hectl cluster-config show' 'hectl console' 'hectl deploy' 'hectl explain' 'hectl fence' 'hectl fence check' 'hectl fence off' 'hectl ha' 'hectl ha run' 'hectl ha simulate' 'hectl metrics' 'hectl plugins' 'hectl reinitialize-lockspace' 'hectl set-maintenance' 'hectl storage' 'hectl storage check' 'hectl storage connect' 'hectl storage disconnect' 'hectl vm-config' 'hectl vm-config set' 'hectl vm-config show' 'hectl vm-migrate' 'hectl vm-poweroff' 'hectl vm-shutdown' 'hectl vm-start' 'hectl vm-status'
set -g __hectl_value_options 'hectl --config' 'hectl add-console-password --expire' 'hectl add-console-password --format' 'hectl add-console-password --password-file' 'hectl check-liveliness --ca' 'hectl check-liveliness --format' 'hectl check-liveliness --timeout' 'hectl check-liveliness --url' 'hectl check-liveliness --warn' 'hectl clean-metadata --format' 'hectl clean-metadata --host-id' 'hectl cluster-config install-key --format' 'hectl cluster-config install-key --key-file' 'hectl cluster-config rotate-key --format' 'hectl cluster-config set --format' 'hectl cluster-config show --format' 'hectl deploy --answers' 'hectl deploy --answers-out' 'hectl deploy --appliance-image' 'hectl deploy --appliance-initrd' 'hectl deploy --appliance-kernel' 'hectl deploy --cloud-init-enabled' 'hectl deploy --cloud-init-hostname' 'hectl deploy --cloud-init-root-password-file' 'hectl deploy --cloud-init-ssh-key' 'hectl deploy --cluster-key-file' 'hectl deploy --engine-fqdn' 'hectl deploy --engine-health-ca' 'hectl deploy --engine-health-timeout' 'hectl deploy --engine-health-url' 'hectl deploy --engine-vm-bridge' 'hectl deploy --engine-vm-cmdline' 'hectl deploy --engine-vm-graphics' 'hectl deploy --engine-vm-graphics-listen' 'hectl deploy --engine-vm-guest-port' 'hectl deploy --engine-vm-host-port' 'hectl deploy --engine-vm-mac' 'hectl deploy --engine-vm-memory-mib' 'hectl deploy --engine-vm-name' 'hectl deploy --engine-vm-network' 'hectl deploy --engine-vm-vcpus' 'hectl deploy --format' 'hectl deploy --host-hostname' 'hectl deploy --host-id' 'hectl deploy --storage-option' 'hectl deploy --storage-timeout' 'hectl deploy --storage-type' 'hectl deploy --timeout' 'hectl explain --format' 'hectl explain --timeout' 'hectl fence check --format' 'hectl fence check --host-id' 'hectl fence off --format' 'hectl fence off --host-id' 'hectl ha simulate --format' 'hectl metrics --timeout' 'hectl plugins --format' 'hectl reinitialize-lockspace --format' 'hectl set-maintenance --format' 'hectl set-maintenance --mode' 'hectl set-maintenance --reason' 'hectl set-maintenance --timeout' 'hectl set-maintenance --ttl' 'hectl storage check --format' 'hectl storage check --timeout' 'hectl storage connect --format' 'hectl storage connect --timeout' 'hectl storage disconnect --format' 'hectl storage disconnect --timeout' 'hectl vm-config set --format' 'hectl vm-config show --format' 'hectl vm-migrate --bandwidth' 'hectl vm-migrate --format' 'hectl vm-migrate --timeout' 'hectl vm-migrate --to' 'hectl vm-poweroff --format' 'hectl vm-shutdown --force-after' 'hectl vm-shutdown --format' 'hectl vm-shutdown --timeout' 'hectl vm-start --format' 'hectl vm-start --timeout' 'hectl vm-start --wait' 'hectl vm-status --format' 'hectl vm-status --host-id' 'hectl vm-status --timeout'

function __hectl_path --description 'hectl command path before the cursor, option values skipped'
    set -l path hectl
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
        else if string match -q -- '-*' $word
            contains -- "$path $word" $__hectl_value_options; and set skip 1
        else if contains -- "$path $word" $__hectl_commands
            set path "$path $word"
        end
    end
    echo $path
end

function __hectl_at --description 'Is the command path before the cursor exactly argv?'
    test (__hectl_path) = "$argv"
end

function __hectl_complete -a kind --description 'Dynamic values: value<TAB>description'
    # The value typed so far: in --option=VALUE, fish completes VALUE.
    hectl __complete $kind (string replace -r -- '^--?[^=]*=' '' (commandline -ct)) 2>/dev/null
end

function __hectl_keyvalue --description 'KEY=VALUE words: argv is KEY... KEY=CHOICE,CHOICE...'
    set -l key (string split -m1 = -- (commandline -ct))
    if set -q key[2]  # after KEY=: the choices of KEY
        for arg in (string match -- "$key[1]=*" $argv)
            string split , -- (string replace -- "$key[1]=" '' $arg) | string replace -r '^' "$key[1]="
        end
    else
        string match -v -- '*=*' $argv | string replace -r '$' =
    end
end

complete -c hectl -f

# hectl
complete -c hectl -n '__hectl_at hectl' -a add-console-password -d 'Set a temporary password on the engine VM\'s graphical console (VNC or SPICE)'
complete -c hectl -n '__hectl_at hectl' -a check-liveliness -d 'Check the engine\'s health page: healthy when it answers HTTP 200 with "DB Up"'
complete -c hectl -n '__hectl_at hectl' -a clean-metadata -d 'Empty one host\'s metadata slot (a host that left for good, or a corrupt slot)'
complete -c hectl -n '__hectl_at hectl' -a cluster-config -d 'The configuration every host shares (,,,,,),'
complete -c hectl -n '__hectl_at hectl' -a console -d 'Attach to the engine VM\'s serial console (leave with Ctrl+])'
complete -c hectl -n '__hectl_at hectl' -a deploy -d 'Make this host a working HA host: the first one, or (--join) one more; --remove undoes it'
complete -c hectl -n '__hectl_at hectl' -a explain -d 'Why this host does what it does: state, score term by term, timers, and each host\'s liveness by'
complete -c hectl -n '__hectl_at hectl' -a fence -d 'Check the hosts\' fence devices, or power a host off through its device'
complete -c hectl -n '__hectl_at hectl' -a ha -d 'The HA agent that runs on every host'
complete -c hectl -n '__hectl_at hectl' -a metrics -d 'Print the cluster status as OpenMetrics text (for node_exporter\'s textfile collector)'
complete -c hectl -n '__hectl_at hectl' -a plugins -d 'List loaded plugins, the hooks they implement, and the storage backends they provide'
complete -c hectl -n '__hectl_at hectl' -a reinitialize-lockspace -d 'Rewrite the sanlock lockspace and the engine lease on the domain (a repair)'
complete -c hectl -n '__hectl_at hectl' -a set-maintenance -d 'Set global or local maintenance, or clear it (--mode none)'
complete -c hectl -n '__hectl_at hectl' -a storage -d 'Check the storage domain and its timing budget; connect or disconnect it by hand'
complete -c hectl -n '__hectl_at hectl' -a vm-config -d 'The engine VM\'s specification, stored on the domain for every host (docs/vm.md)'
complete -c hectl -n '__hectl_at hectl' -a vm-migrate -d 'Live-migrate the engine VM from this host to another one, its lease moving with it'
complete -c hectl -n '__hectl_at hectl' -a vm-poweroff -d 'Power the engine VM off at once (like pulling the plug; its lease is released)'
complete -c hectl -n '__hectl_at hectl' -a vm-shutdown -d 'Shut the engine VM down gracefully (ACPI power button)'
complete -c hectl -n '__hectl_at hectl' -a vm-start -d 'Start the engine VM on this host under its sanlock lease'
complete -c hectl -n '__hectl_at hectl' -a vm-status -d 'Show every host\'s record: state, score, engine status, maintenance, data age'
complete -c hectl -n '__hectl_at hectl' -l config -r -F -d 'Configuration file'
complete -c hectl -n '__hectl_at hectl' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl' -l quiet -s q -d 'No warnings; no output from commands that only act'
complete -c hectl -n '__hectl_at hectl' -l verbose -s v -d 'More detail on stderr; tracebacks on errors'
complete -c hectl -n '__hectl_at hectl' -l version -d 'Show the version and exit'

# hectl add-console-password
complete -c hectl -n '__hectl_at hectl add-console-password' -l expire -x -d 'The password stops working after this (e.g. 90s, 10m)'
complete -c hectl -n '__hectl_at hectl add-console-password' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl add-console-password' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl add-console-password' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl add-console-password' -l password-file -r -F -d 'Read the password from the first line of FILE'
complete -c hectl -n '__hectl_at hectl add-console-password' -l password-stdin -d 'Read the password from the first line of stdin'

# hectl check-liveliness
complete -c hectl -n '__hectl_at hectl check-liveliness' -l ca -r -F -d 'CA bundle for an https URL'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l nagios -d 'One Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l timeout -x -d 'Give up after this long, everything included'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l url -x -d 'The engine\'s health page'
complete -c hectl -n '__hectl_at hectl check-liveliness' -l warn -x -d 'With --nagios: WARNING when the healthy answer took longer than this'

# hectl clean-metadata
complete -c hectl -n '__hectl_at hectl clean-metadata' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl clean-metadata' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl clean-metadata' -l host-id -x -d 'The host whose slot to empty'
complete -c hectl -n '__hectl_at hectl clean-metadata' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl clean-metadata' -l yes -d 'Do it (without: only show what would change)'

# hectl cluster-config
complete -c hectl -n '__hectl_at hectl cluster-config' -a install-key -d 'Make a copy of the cluster key this host\'s own (never from the command line)'
complete -c hectl -n '__hectl_at hectl cluster-config' -a rotate-key -d 'Sign the cluster configuration with a new cluster key, made here'
complete -c hectl -n '__hectl_at hectl cluster-config' -a set -d 'Change keys every host shares; every agent applies the new version within one cycle'
complete -c hectl -n '__hectl_at hectl cluster-config' -a show -d 'Print the cluster configuration as stored on the domain (keys not listed have their defaults)'
complete -c hectl -n '__hectl_at hectl cluster-config' -l help -s h -d 'Show this message and exit'

# hectl cluster-config install-key
complete -c hectl -n '__hectl_at hectl cluster-config install-key' -l force -d 'Install it even when it does not verify the domain\'s cluster configuration'
complete -c hectl -n '__hectl_at hectl cluster-config install-key' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl cluster-config install-key' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl cluster-config install-key' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl cluster-config install-key' -l key-file -x -d 'Read the key from this root-only file (0600); default: a hidden prompt'

# hectl cluster-config rotate-key
complete -c hectl -n '__hectl_at hectl cluster-config rotate-key' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl cluster-config rotate-key' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl cluster-config rotate-key' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl cluster-config rotate-key' -l yes -d 'Really rotate it (required: every other host then needs the new key)'

# hectl cluster-config set
complete -c hectl -n '__hectl_at hectl cluster-config set' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl cluster-config set' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl cluster-config set' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl cluster-config set' -l replace -d 'Replace the whole cluster configuration (keys not given return to defaults)'
complete -c hectl -n '__hectl_at hectl cluster-config set' -a '(__hectl_keyvalue score.base score.network_penalty score.config_penalty score.bridge_penalty score.memory_penalty score.cpu_penalty score.cpu_min score.cpu_max score.retry_penalty ha.loop ha.history ha.starting ha.bad_health ha.stop ha.maybe_away ha.retry_window ha.yield_margin ha.io_timeout ha.engine_mem_mib timeouts.liveness_window timeouts.agent_silent_after notify.smtp_server notify.smtp_port notify.timeout notify.source notify.destinations notify.events notify.starttls notify.implicit_tls notify.username engine.fqdn engine.health_url engine.health_timeout fencing.enabled fencing.dead_after fencing.timeout)' -d 'SECTION.KEY=VALUE...'

# hectl cluster-config show
complete -c hectl -n '__hectl_at hectl cluster-config show' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl cluster-config show' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl cluster-config show' -l json -d 'Same as --format json'

# hectl console
complete -c hectl -n '__hectl_at hectl console' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl console' -l log -d 'Print the serial console\'s log instead of attaching'

# hectl deploy
complete -c hectl -n '__hectl_at hectl deploy' -l answers -x -d 'Answers file (INI; docs/deploy.md lists every key)'
complete -c hectl -n '__hectl_at hectl deploy' -l answers-out -x -d 'Write the effective answers here (secrets left out)'
complete -c hectl -n '__hectl_at hectl deploy' -l appliance-image -x -d 'engine disk image to import (raw or qcow2; a backing file is refused)'
complete -c hectl -n '__hectl_at hectl deploy' -l appliance-initrd -x -d 'initrd for direct boot (with kernel)'
complete -c hectl -n '__hectl_at hectl deploy' -l appliance-kernel -x -d 'kernel for direct boot of the engine (with initrd; optional)'
complete -c hectl -n '__hectl_at hectl deploy' -l cloud-init-enabled -x -d 'build a NoCloud seed (hostname, root password, ssh key) for the engine'
complete -c hectl -n '__hectl_at hectl deploy' -l cloud-init-hostname -x -d 'the engine\'s hostname in the seed'
complete -c hectl -n '__hectl_at hectl deploy' -l cloud-init-root-password-file -x -d 'the engine\'s root password (from --cloud-init-root-password-file or a hidden prompt only) (a root-only file, 0600)'
complete -c hectl -n '__hectl_at hectl deploy' -l cloud-init-ssh-key -x -d 'an OpenSSH public key for the engine\'s root'
complete -c hectl -n '__hectl_at hectl deploy' -l cluster-key-file -x -d '--join: the cluster key, a root-only copy of the first host\'s cluster.key (default: a hidden prompt)'
complete -c hectl -n '__hectl_at hectl deploy' -l dry-run -d 'Print the plan with each step\'s state; change nothing'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-fqdn -x -d 'fqdn of the configuration (shared: kept on the domain); docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-health-ca -x -d 'health_ca of the configuration; docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-health-timeout -x -d 'health_timeout of the configuration (shared: kept on the domain); docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-health-url -x -d 'health_url of the configuration (shared: kept on the domain); docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-bridge -x -d 'host bridge of the engine\'s NIC (network = bridge)'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-cmdline -x -d 'kernel command line for direct boot'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-graphics -x -a 'vnc spice none' -d 'vnc | spice | none'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-graphics-listen -x -d 'address the console listens on'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-guest-port -x -d 'network = user: the guest port forwarded'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-host-port -x -d 'network = user: 127.0.0.1:host_port reaches guest_port'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-mac -x -d 'the engine\'s MAC: unicast; default: locally administered 52:54:00:xx:xx:xx from the VM\'s uuid'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-memory-mib -x -d 'the engine VM\'s memory (checked against this host\'s)'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-name -x -d 'the engine VM\'s libvirt name'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-network -x -a 'user bridge none' -d 'user (NAT with a port forward, one host) | bridge | none'
complete -c hectl -n '__hectl_at hectl deploy' -l engine-vm-vcpus -x -d 'the engine VM\'s vCPUs (checked against this host\'s)'
complete -c hectl -n '__hectl_at hectl deploy' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl deploy' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl deploy' -l host-hostname -x -d 'hostname of the configuration; docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l host-id -x -d 'id of the configuration; docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l join -d 'Join a domain deployed by another host (storage and host id only)'
complete -c hectl -n '__hectl_at hectl deploy' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl deploy' -l remove -d 'Remove this host from the cluster (refused while the engine runs here)'
complete -c hectl -n '__hectl_at hectl deploy' -l storage-option -x -d 'A backend option of (path=..., connection=...); repeatable'
complete -c hectl -n '__hectl_at hectl deploy' -l storage-timeout -x -d 'timeout of the configuration; docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l storage-type -x -a '(__hectl_complete backends)' -d 'type of the configuration; docs/configuration.md'
complete -c hectl -n '__hectl_at hectl deploy' -l timeout -x -d 'Longest wait of one step (lockspace, engine start, health page)'

# hectl explain
complete -c hectl -n '__hectl_at hectl explain' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl explain' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl explain' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl explain' -l timeout -x -d 'Hard limit for each storage operation'

# hectl fence
complete -c hectl -n '__hectl_at hectl fence' -a check -d 'Ask each fence device whether it answers (monitor) and what power it sees (status)'
complete -c hectl -n '__hectl_at hectl fence' -a off -d 'Power a host off through its fence device and confirm that it is off'
complete -c hectl -n '__hectl_at hectl fence' -l help -s h -d 'Show this message and exit'

# hectl fence check
complete -c hectl -n '__hectl_at hectl fence check' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl fence check' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl fence check' -l host-id -x -a '(__hectl_complete host-ids)' -d 'Check this host\'s device only'
complete -c hectl -n '__hectl_at hectl fence check' -l json -d 'Same as --format json'

# hectl fence off
complete -c hectl -n '__hectl_at hectl fence off' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl fence off' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl fence off' -l host-id -x -a '(__hectl_complete host-ids)' -d 'The host to power off (required)'
complete -c hectl -n '__hectl_at hectl fence off' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl fence off' -l yes -d 'Really power it off (required: there is no prompt)'

# hectl ha
complete -c hectl -n '__hectl_at hectl ha' -a run -d 'Run the HA agent in the foreground (for systemd; logs to stderr)'
complete -c hectl -n '__hectl_at hectl ha' -a simulate -d 'Run SCENARIO (a TOML file, see docs/simulate.md) on simulated hosts and print the timeline'
complete -c hectl -n '__hectl_at hectl ha' -l help -s h -d 'Show this message and exit'

# hectl ha run
complete -c hectl -n '__hectl_at hectl ha run' -l help -s h -d 'Show this message and exit'

# hectl ha simulate
complete -c hectl -n '__hectl_at hectl ha simulate' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl ha simulate' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl ha simulate' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl ha simulate' -F -d 'SCENARIO'

# hectl metrics
complete -c hectl -n '__hectl_at hectl metrics' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl metrics' -l timeout -x -d 'Hard limit for each storage operation'

# hectl plugins
complete -c hectl -n '__hectl_at hectl plugins' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl plugins' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl plugins' -l json -d 'Same as --format json'

# hectl reinitialize-lockspace
complete -c hectl -n '__hectl_at hectl reinitialize-lockspace' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl reinitialize-lockspace' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl reinitialize-lockspace' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl reinitialize-lockspace' -l yes -d 'Do it (without: only show what would change)'

# hectl set-maintenance
complete -c hectl -n '__hectl_at hectl set-maintenance' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l mode -x -a 'global local none' -d 'global: whole cluster; local: this host; none: clear both'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l reason -x -d 'Why (shown in vm-status and the audit log)'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l timeout -x -d 'Hard limit for each storage operation'
complete -c hectl -n '__hectl_at hectl set-maintenance' -l ttl -x -d 'Expire by itself after e.g. 90s, 30m, 2h, 1d'

# hectl storage
complete -c hectl -n '__hectl_at hectl storage' -a check -d 'Check the storage domain and the timing budget of its layers against sanlock\'s'
complete -c hectl -n '__hectl_at hectl storage' -a connect -d 'Make the storage domain reachable on this host (mount...)'
complete -c hectl -n '__hectl_at hectl storage' -a disconnect -d 'Undo what connect did (unmount...)'
complete -c hectl -n '__hectl_at hectl storage' -l help -s h -d 'Show this message and exit'

# hectl storage check
complete -c hectl -n '__hectl_at hectl storage check' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl storage check' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl storage check' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl storage check' -l timeout -x -d 'Hard limit for each storage operation'

# hectl storage connect
complete -c hectl -n '__hectl_at hectl storage connect' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl storage connect' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl storage connect' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl storage connect' -l timeout -x -d 'Hard limit for the operation'

# hectl storage disconnect
complete -c hectl -n '__hectl_at hectl storage disconnect' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl storage disconnect' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl storage disconnect' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl storage disconnect' -l timeout -x -d 'Hard limit for the operation'

# hectl vm-config
complete -c hectl -n '__hectl_at hectl vm-config' -a set -d 'Change the engine VM\'s specification on the domain (every host uses it at its next start)'
complete -c hectl -n '__hectl_at hectl vm-config' -a show -d 'Print the engine VM\'s specification as stored on the domain'
complete -c hectl -n '__hectl_at hectl vm-config' -l help -s h -d 'Show this message and exit'

# hectl vm-config set
complete -c hectl -n '__hectl_at hectl vm-config set' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-config set' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-config set' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl vm-config set' -a '(__hectl_keyvalue uuid name memory_mib vcpus kernel initrd cmdline disk disk_format seed network bridge mac host_port guest_port graphics graphics_listen disk_format=qcow2,raw network=user,bridge,none graphics=vnc,spice,none)' -d 'KEY=VALUE...'

# hectl vm-config show
complete -c hectl -n '__hectl_at hectl vm-config show' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-config show' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-config show' -l json -d 'Same as --format json'

# hectl vm-migrate
complete -c hectl -n '__hectl_at hectl vm-migrate' -l bandwidth -x -d 'Limit the migration stream (0: none)'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l timeout -x -d 'Abort the migration after this (the engine keeps running here); with --wait, bounds the whole wait'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l to -x -d 'The target host'
complete -c hectl -n '__hectl_at hectl vm-migrate' -l wait -d 'Also wait until the target\'s agent reports the engine up and its health page answers'

# hectl vm-poweroff
complete -c hectl -n '__hectl_at hectl vm-poweroff' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-poweroff' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-poweroff' -l json -d 'Same as --format json'

# hectl vm-shutdown
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l force-after -x -d 'Power the VM off when the guest has not shut down after SECONDS (implies waiting)'
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l timeout -x -d 'With --wait: exit 7 when the guest is still running after this'
complete -c hectl -n '__hectl_at hectl vm-shutdown' -l wait -d 'Wait until the guest has powered itself off (see --timeout)'

# hectl vm-start
complete -c hectl -n '__hectl_at hectl vm-start' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-start' -l healthy -d 'With --wait: also wait until check-liveliness is green'
complete -c hectl -n '__hectl_at hectl vm-start' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-start' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl vm-start' -l paused -d 'Start with the CPUs stopped (the lease is taken when it resumes)'
complete -c hectl -n '__hectl_at hectl vm-start' -l timeout -x -d 'Give up the start after this, waiting for the engine lease included'
complete -c hectl -n '__hectl_at hectl vm-start' -l wait -x -d 'Wait until the VM runs (at most SECONDS, default 300)'

# hectl vm-status
complete -c hectl -n '__hectl_at hectl vm-status' -l check -d 'One Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'
complete -c hectl -n '__hectl_at hectl vm-status' -l format -x -a 'table json' -d 'Output format (JSON fields are documented, stable API)'
complete -c hectl -n '__hectl_at hectl vm-status' -l help -s h -d 'Show this message and exit'
complete -c hectl -n '__hectl_at hectl vm-status' -l host-id -x -a '(__hectl_complete host-ids)' -d 'Show only this host (repeatable)'
complete -c hectl -n '__hectl_at hectl vm-status' -l json -d 'Same as --format json'
complete -c hectl -n '__hectl_at hectl vm-status' -l timeout -x -d 'Hard limit for each storage operation'
