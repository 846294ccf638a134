# bash completion for hectl.
# Generated from the click commands by `python -m hectl.cli.scripts completions`; do not edit.
# Static parts are pure shell; dynamic values come from `hectl __complete KIND PREFIX`.

declare -gA _hectl_commands=(
    [hectl]='add-console-password check-liveliness clean-metadata cluster-config console deploy explain fence ha metrics plugins reinitialize-lockspace set-maintenance storage vm-config vm-migrate vm-poweroff vm-shutdown vm-start vm-status'
    ['hectl add-console-password']=''
    ['hectl check-liveliness']=''
    ['hectl clean-metadata']=''
    ['hectl cluster-config']='install-key rotate-key set show'
    ['hectl cluster-config install-key']=''
    ['hectl cluster-config rotate-key']=''
    ['hectl cluster-config set']=''
    ['hectl cluster-config show']=''
    ['hectl console']=''
    ['hectl deploy']=''
    ['hectl explain']=''
    ['hectl fence']='check off'
    ['hectl fence check']=''
    ['hectl fence off']=''
    ['hectl ha']='run simulate'
    ['hectl ha run']=''
    ['hectl ha simulate']=''
    ['hectl metrics']=''
    ['hectl plugins']=''
    ['hectl reinitialize-lockspace']=''
    ['hectl set-maintenance']=''
    ['hectl storage']='check connect disconnect'
    ['hectl storage check']=''
    ['hectl storage connect']=''
    ['hectl storage disconnect']=''
    ['hectl vm-config']='set show'
    ['hectl vm-config set']=''
    ['hectl vm-config show']=''
    ['hectl vm-migrate']=''
    ['hectl vm-poweroff']=''
    ['hectl vm-shutdown']=''
    ['hectl vm-start']=''
    ['hectl vm-status']=''
)
declare -gA _hectl_options=(
    [hectl]='--config --help --quiet --verbose --version -h -q -v'
    ['hectl add-console-password']='--expire --format --help --json --password-file --password-stdin -h'
    ['hectl check-liveliness']='--ca --format --help --json --nagios --timeout --url --warn -h'
    ['hectl clean-metadata']='--format --help --host-id --json --yes -h'
    ['hectl cluster-config']='--help -h'
    ['hectl cluster-config install-key']='--force --format --help --json --key-file -h'
    ['hectl cluster-config rotate-key']='--format --help --json --yes -h'
    ['hectl cluster-config set']='--format --help --json --replace -h'
    ['hectl cluster-config show']='--format --help --json -h'
    ['hectl console']='--help --log -h'
    ['hectl deploy']='--answers --answers-out --appliance-image --appliance-initrd --appliance-kernel --cloud-init-enabled --cloud-init-hostname --cloud-init-root-password-file --cloud-init-ssh-key --cluster-key-file --dry-run --engine-fqdn --engine-health-ca --engine-health-timeout --engine-health-url --engine-vm-bridge --engine-vm-cmdline --engine-vm-graphics --engine-vm-graphics-listen --engine-vm-guest-port --engine-vm-host-port --engine-vm-mac --engine-vm-memory-mib --engine-vm-name --engine-vm-network --engine-vm-vcpus --format --help --host-hostname --host-id --join --json --remove --storage-option --storage-timeout --storage-type --timeout -h'
    ['hectl explain']='--format --help --json --timeout -h'
    ['hectl fence']='--help -h'
    ['hectl fence check']='--format --help --host-id --json -h'
    ['hectl fence off']='--format --help --host-id --json --yes -h'
    ['hectl ha']='--help -h'
    ['hectl ha run']='--help -h'
    ['hectl ha simulate']='--format --help --json -h'
    ['hectl metrics']='--help --timeout -h'
    ['hectl plugins']='--format --help --json -h'
    ['hectl reinitialize-lockspace']='--format --help --json --yes -h'
    ['hectl set-maintenance']='--format --help --json --mode --reason --timeout --ttl -h'
    ['hectl storage']='--help -h'
    ['hectl storage check']='--format --help --json --timeout -h'
    ['hectl storage connect']='--format --help --json --timeout -h'
    ['hectl storage disconnect']='--format --help --json --timeout -h'
    ['hectl vm-config']='--help -h'
    ['hectl vm-config set']='--format --help --json -h'
    ['hectl vm-config show']='--format --help --json -h'
    ['hectl vm-migrate']='--bandwidth --format --help --json --timeout --to --wait -h'
    ['hectl vm-poweroff']='--format --help --json -h'
    ['hectl vm-shutdown']='--force-after --format --help --json --timeout --wait -h'
    ['hectl vm-start']='--format --healthy --help --json --paused --timeout --wait -h'
    ['hectl vm-status']='--check --format --help --host-id --json --timeout -h'
)
declare -gA _hectl_values=(
    ['hectl --config']=file
    ['hectl add-console-password --expire']=''
    ['hectl add-console-password --format']='choice table json'
    ['hectl add-console-password --password-file']=file
    ['hectl check-liveliness --ca']=file
    ['hectl check-liveliness --format']='choice table json'
    ['hectl check-liveliness --timeout']=''
    ['hectl check-liveliness --url']=''
    ['hectl check-liveliness --warn']=''
    ['hectl clean-metadata --format']='choice table json'
    ['hectl clean-metadata --host-id']=''
    ['hectl cluster-config install-key --format']='choice table json'
    ['hectl cluster-config install-key --key-file']=''
    ['hectl cluster-config rotate-key --format']='choice table json'
    ['hectl cluster-config set --format']='choice table json'
    ['hectl cluster-config show --format']='choice table json'
    ['hectl deploy --answers']=''
    ['hectl deploy --answers-out']=''
    ['hectl deploy --appliance-image']=''
    ['hectl deploy --appliance-initrd']=''
    ['hectl deploy --appliance-kernel']=''
    ['hectl deploy --cloud-init-enabled']=''
    ['hectl deploy --cloud-init-hostname']=''
    ['hectl deploy --cloud-init-root-password-file']=''
    ['hectl deploy --cloud-init-ssh-key']=''
    ['hectl deploy --cluster-key-file']=''
    ['hectl deploy --engine-fqdn']=''
    ['hectl deploy --engine-health-ca']=''
    ['hectl deploy --engine-health-timeout']=''
    ['hectl deploy --engine-health-url']=''
    ['hectl deploy --engine-vm-bridge']=''
    ['hectl deploy --engine-vm-cmdline']=''
    ['hectl deploy --engine-vm-graphics']='choice vnc spice none'
    ['hectl deploy --engine-vm-graphics-listen']=''
    ['hectl deploy --engine-vm-guest-port']=''
    ['hectl deploy --engine-vm-host-port']=''
    ['hectl deploy --engine-vm-mac']=''
    ['hectl deploy --engine-vm-memory-mib']=''
    ['hectl deploy --engine-vm-name']=''
    ['hectl deploy --engine-vm-network']='choice user bridge none'
    ['hectl deploy --engine-vm-vcpus']=''
    ['hectl deploy --format']='choice table json'
    ['hectl deploy --host-hostname']=''
    ['hectl deploy --host-id']=''
    ['hectl deploy --storage-option']=''
    ['hectl deploy --storage-timeout']=''
    ['hectl deploy --storage-type']='dynamic backends'
    ['hectl deploy --timeout']=''
    ['hectl explain --format']='choice table json'
    ['hectl explain --timeout']=''
    ['hectl fence check --format']='choice table json'
    ['hectl fence check --host-id']='dynamic host-ids'
    ['hectl fence off --format']='choice table json'
    ['hectl fence off --host-id']='dynamic host-ids'
    ['hectl ha simulate --format']='choice table json'
    ['hectl metrics --timeout']=''
    ['hectl plugins --format']='choice table json'
    ['hectl reinitialize-lockspace --format']='choice table json'
    ['hectl set-maintenance --format']='choice table json'
    ['hectl set-maintenance --mode']='choice global local none'
    ['hectl set-maintenance --reason']=''
    ['hectl set-maintenance --timeout']=''
    ['hectl set-maintenance --ttl']=''
    ['hectl storage check --format']='choice table json'
    ['hectl storage check --timeout']=''
    ['hectl storage connect --format']='choice table json'
    ['hectl storage connect --timeout']=''
    ['hectl storage disconnect --format']='choice table json'
    ['hectl storage disconnect --timeout']=''
    ['hectl vm-config set --format']='choice table json'
    ['hectl vm-config set disk_format=']='choice qcow2 raw'
    ['hectl vm-config set graphics=']='choice vnc spice none'
    ['hectl vm-config set network=']='choice user bridge none'
    ['hectl vm-config show --format']='choice table json'
    ['hectl vm-migrate --bandwidth']=''
    ['hectl vm-migrate --format']='choice table json'
    ['hectl vm-migrate --timeout']=''
    ['hectl vm-migrate --to']=''
    ['hectl vm-poweroff --format']='choice table json'
    ['hectl vm-shutdown --force-after']=''
    ['hectl vm-shutdown --format']='choice table json'
    ['hectl vm-shutdown --timeout']=''
    ['hectl vm-start --format']='choice table json'
    ['hectl vm-start --timeout']=''
    ['hectl vm-start --wait']='optional '
    ['hectl vm-status --format']='choice table json'
    ['hectl vm-status --host-id']='dynamic host-ids'
    ['hectl vm-status --timeout']=''
)
declare -gA _hectl_args=(
    ['hectl cluster-config set']='choice score.base= score.network_penalty= score.config_penalty= score.bridge_penalty= score.memory_penalty= score.cpu_penalty= score.cpu_min= score.cpu_max= score.retry_penalty= ha.loop= ha.history= ha.starting= ha.bad_health= ha.stop= ha.maybe_away= ha.retry_window= ha.yield_margin= ha.io_timeout= ha.engine_mem_mib= timeouts.liveness_window= timeouts.agent_silent_after= notify.smtp_server= notify.smtp_port= notify.timeout= notify.source= notify.destinations= notify.events= notify.starttls= notify.implicit_tls= notify.username= engine.fqdn= engine.health_url= engine.health_timeout= fencing.enabled= fencing.dead_after= fencing.timeout='
    ['hectl ha simulate']=file
    ['hectl vm-config set']='choice uuid= name= memory_mib= vcpus= kernel= initrd= cmdline= disk= disk_format= seed= network= bridge= mac= host_port= guest_port= graphics= graphics_listen='
)

_hectl() {
    local cur=${COMP_WORDS[COMP_CWORD]} path=hectl word spec i=1
    COMPREPLY=()
    while (( i < COMP_CWORD )); do
        word=${COMP_WORDS[i]}
        (( i++ ))
        if [[ $word == -* && -n ${_hectl_values["$path $word"]+set} ]]; then
            spec=${_hectl_values["$path $word"]}
            if [[ ${COMP_WORDS[i]} == = ]] && (( i < COMP_CWORD )); then
                (( i++ ))  # --option=value
            elif [[ $spec == optional\ * && ${COMP_WORDS[i]} == -* ]]; then
                continue  # --option [VALUE] followed by an option: no value
            fi
            if (( i == COMP_CWORD )); then
                [[ $cur == = ]] && cur=
                _hectl_value "${spec#optional }" "$cur"
                return 0
            fi
            (( i++ ))
        elif [[ $word != -* && -n ${_hectl_commands["$path $word"]+set} ]]; then
            path+=" $word"
        fi
    done
    if [[ $cur == -* ]] || [[ -z ${_hectl_commands[$path]} && -z ${_hectl_args[$path]} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_hectl_options[$path]}" -- "$cur")
    elif [[ -n ${_hectl_commands[$path]} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_hectl_commands[$path]}" -- "$cur")
    elif [[ $cur == = ]]; then  # KEY=VALUE: bash splits it into KEY, "=" and VALUE
        _hectl_value "${_hectl_values["$path ${COMP_WORDS[COMP_CWORD-1]}="]}" ""
    elif [[ ${COMP_WORDS[COMP_CWORD-1]} == = ]]; then
        _hectl_value "${_hectl_values["$path ${COMP_WORDS[COMP_CWORD-2]}="]}" "$cur"
    else
        _hectl_value "${_hectl_args[$path]}" "$cur"
    fi
}

# _hectl_value SPEC PREFIX: complete a value ("choice A B", "file", "dir", "dynamic KIND"); "KEY=" choices take no space.
_hectl_value() {
    local value _
    case $1 in
        choice\ *)
            mapfile -t COMPREPLY < <(compgen -W "${1#choice }" -- "$2")
            [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
            ;;
        file | dir)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -A "${1/dir/directory}" -- "$2")
            ;;
        dynamic\ *)
            while IFS=$'\t' read -r value _; do
                COMPREPLY+=("$value")
            done < <(hectl __complete "${1#dynamic }" "$2" 2>/dev/null)
            ;;
    esac
}

complete -F _hectl hectl
