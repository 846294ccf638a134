"""Generate the shell completion scripts (bash, zsh, fish) from the click command tree.

``python -m hectl.cli.scripts completions`` walks the real click tree and
writes completions/hectl.bash, completions/_hectl (zsh) and completions/hectl.fish.
Their static parts (commands, options, choices, paths) are pure shell; only
dynamic values run ``hectl __complete KIND PREFIX`` (the click-free fast path).
``python -m hectl.cli.scripts --man docs/man`` writes the man pages (hectl.cli.manpages).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import click

_WORD = re.compile(r"[\w@%+,./-]+=?\Z")  # embedded unquoted in all three shells ("KEY=": a key of KEY=VALUE words)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One option, or a command's positional argument (no names), as the completion scripts see it."""

    names: tuple[str, ...]  # every spelling, long and short
    help: str
    metavar: str
    takes_value: bool
    repeatable: bool
    choices: tuple[str, ...] = ()  # "KEY=" choices: KEY=VALUE words
    paths: str = ""  # "file" or "dir": let the shell complete paths
    dynamic: str = ""  # provider kind for ``hectl __complete KIND``
    optional_value: bool = False  # ``--wait [SECONDS]``: a following option is not its value
    key_choices: tuple[tuple[str, tuple[str, ...]], ...] = ()  # KEY=VALUE words: the values of keys that have choices


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """One command (or group) of the tree; ``path`` starts with "hectl"."""

    path: tuple[str, ...]
    options: tuple[OptionSpec, ...]
    subcommands: tuple[tuple[str, str], ...]  # (name, short help)
    argument: OptionSpec | None = None  # the positional argument, if any


def _word(text: str) -> str:
    if not _WORD.match(text):
        raise ValueError(f"{text!r} cannot be embedded in completion scripts")
    return text


def _summary(text: str | None) -> str:
    """Help text as one line, without ``[default: ...]`` notes (one nesting level) or the final period."""
    return " ".join(re.sub(r"\s*\[(?:[^][]|\[[^]]*\])*\]", "", text or "").split()).rstrip(".")


def _option(param: click.Parameter, ctx: click.Context) -> OptionSpec:
    import click

    option = isinstance(param, click.Option)
    takes_value = not (option and (param.is_flag or param.count))  # type: ignore[attr-defined]
    # click keeps the shell_complete= callback only in this private attribute.
    kind = getattr(param._custom_shell_complete, "completion_kind", "") if takes_value else ""
    if param._custom_shell_complete is not None and not kind:
        raise ValueError(f"{param.opts[0]}: shell_complete callbacks must come from hectl.cli.completion (completion_kind)")
    items = [] if kind or not takes_value else param.type.shell_complete(ctx, param, "")
    choices = tuple(_word(i.value) for i in items if i.type == "plain")
    key_choices = [(c[:-1], param.type.shell_complete(ctx, param, c)) for c in choices if c.endswith("=")]
    names = sorted(param.opts + param.secondary_opts) if option else []
    return OptionSpec(
        names=tuple(_word(n) for n in names),
        help=_summary(getattr(param, "help", "")),
        metavar=param.metavar or (max(names, key=len).lstrip("-") if option else param.human_readable_name),
        takes_value=takes_value,
        repeatable=bool(param.multiple or getattr(param, "count", False) or param.nargs == -1),
        choices=choices,
        paths=next((i.type for i in items if i.type in ("file", "dir")), ""),
        dynamic=kind,
        optional_value=option and param._flag_needs_value,  # type: ignore[attr-defined]
        key_choices=tuple(
            (key, tuple(_word(i.value.partition("=")[2]) for i in values)) for key, values in key_choices if values
        ),
    )


def command_tree() -> list[CommandSpec]:
    """Every command of ``hectl.cli.root.cli`` (lazy ones loaded), parents first, sorted."""
    import click

    from hectl.cli.root import cli

    specs: list[CommandSpec] = []

    def walk(cmd: click.Command, ctx: click.Context, path: tuple[str, ...]) -> None:
        subs: list[tuple[str, click.Command]] = []
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    subs.append((_word(name), sub))
        options = [_option(p, ctx) for p in cmd.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
        arguments = [_option(p, ctx) for p in cmd.get_params(ctx) if isinstance(p, click.Argument)]
        if len(arguments) > 1:
            raise ValueError(f"{' '.join(path)}: the completion scripts handle one positional argument per command")
        specs.append(
            CommandSpec(
                path=path,
                options=tuple(sorted(options, key=lambda o: o.names)),
                subcommands=tuple((name, _summary(sub.get_short_help_str(100))) for name, sub in subs),
                argument=arguments[0] if arguments else None,
            )
        )
        for name, sub in subs:
            walk(sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings), (*path, name))

    walk(cli, click.Context(cli, info_name="hectl", **cli.context_settings), ("hectl",))
    return specs


def _header(comment: str, shell: str) -> str:
    return (
        f"{comment} {shell} completion for hectl.\n"
        f"{comment} Generated from the click commands by `python -m hectl.cli.scripts completions`; do not edit.\n"
        f"{comment} Static parts are pure shell; dynamic values come from `hectl __complete KIND PREFIX`.\n"
    )


def _value_spec(opt: OptionSpec) -> str:
    if opt.dynamic:
        return f"dynamic {opt.dynamic}"
    if opt.choices:
        return "choice " + " ".join(opt.choices)
    return opt.paths


def _bash_value_spec(opt: OptionSpec) -> str:
    return ("optional " if opt.optional_value else "") + _value_spec(opt)


_BASH_FUNCTIONS = r"""
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
"""


def render_bash(tree: list[CommandSpec]) -> str:
    """The bash script: four associative tables plus a small scanner."""

    def table(name: str, rows: list[tuple[str, str]]) -> str:
        body = "".join(f"    [{shlex.quote(k)}]={shlex.quote(v)}\n" for k, v in sorted(rows))
        return f"declare -gA {name}=(\n{body})\n"

    commands, options, values, args = [], [], [], []
    for cmd in tree:
        path = " ".join(cmd.path)
        commands.append((path, " ".join(name for name, _ in cmd.subcommands)))
        options.append((path, " ".join(sorted(n for o in cmd.options for n in o.names))))
        values += [(f"{path} {n}", _bash_value_spec(o)) for o in cmd.options if o.takes_value for n in o.names]
        if cmd.argument is not None:
            args.append((path, _value_spec(cmd.argument)))
            values += [(f"{path} {key}=", "choice " + " ".join(words)) for key, words in cmd.argument.key_choices]
    tables = "".join(
        table(name, rows)
        for name, rows in (
            ("_hectl_commands", commands),
            ("_hectl_options", options),
            ("_hectl_values", values),
            ("_hectl_args", args),
        )
    )
    return _header("#", "bash") + "\n" + tables + _BASH_FUNCTIONS


def _zsh_escape(text: str) -> str:
    """Escape text for a bracketed _arguments description or message."""
    return re.sub(r"([\\\[\]:])", r"\\\1", text)


def _zsh_function(path: tuple[str, ...]) -> str:
    return "__".join(p.replace("-", "_") for p in ("_hectl", *path[1:]))


def _keyvalue_args(opt: OptionSpec) -> str:
    """For KEY=VALUE words, the arguments of the shell functions _hectl_keyvalue: KEY... KEY=CHOICE,CHOICE..."""
    keys = [c[:-1] for c in opt.choices if c.endswith("=")]
    return " ".join([*keys, *(f"{key}={','.join(words)}" for key, words in opt.key_choices)]) if keys else ""


def _zsh_action(opt: OptionSpec) -> str:
    if opt.dynamic:
        return f"_hectl_complete {opt.dynamic}"
    if _keyvalue_args(opt):
        return f"_hectl_keyvalue {_keyvalue_args(opt)}"
    if opt.choices:
        return "(" + " ".join(opt.choices) + ")"
    return {"file": "_files", "dir": "_files -/"}.get(opt.paths, " ")


def _zsh_option_specs(opt: OptionSpec) -> list[str]:
    action = _zsh_action(opt)
    if not opt.names:  # the positional argument
        return [f"{'*' if opt.repeatable else '1'}:{_zsh_escape(opt.metavar)}:{action}"]
    exclude = "*" if opt.repeatable else "(" + " ".join(opt.names) + ")"
    specs = []
    for name in opt.names:
        suffix = ("=" if name.startswith("--") else "+") if opt.takes_value else ""
        spec = f"{exclude}{name}{suffix}[{_zsh_escape(opt.help)}]"
        if opt.takes_value:
            spec += f"{'::' if opt.optional_value else ':'}{_zsh_escape(opt.metavar)}:{action}"
        specs.append(spec)
    return specs


_ZSH_COMPLETE = r"""
# _hectl_complete [COMPADD-OPTIONS] KIND: dynamic values with their descriptions.
_hectl_complete() {
  local kind=$argv[-1] line
  local -a values
  for line in ${(f)"$(hectl __complete $kind "$PREFIX" 2>/dev/null)"}; do
    values+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
  done
  _describe -t values $kind values "${(@)argv[1,-2]}"
}

# _hectl_keyvalue KEY... KEY=CHOICE,CHOICE...: KEY=VALUE words, the keys first, then the choices of KEY.
_hectl_keyvalue() {
  local arg
  if compset -P 1 '*='; then
    for arg in ${(M)argv:#${IPREFIX}*}; do
      compadd -- ${(s:,:)arg#*=}
    done
  else
    compadd -S = -- ${argv:#*=*}
  fi
}
"""


def render_zsh(tree: list[CommandSpec]) -> str:
    """The zsh script: one _arguments function per command, dispatching to subcommands."""
    out = ["#compdef hectl\n", _header("#", "zsh"), _ZSH_COMPLETE]
    for cmd in tree:
        specs = [s for o in cmd.options for s in _zsh_option_specs(o)]
        if cmd.argument is not None:
            specs += _zsh_option_specs(cmd.argument)
        lines = [f"\n{_zsh_function(cmd.path)}() {{\n"]
        if cmd.subcommands:
            lines.append("  local curcontext=$curcontext state state_descr line ret=1\n  typeset -A opt_args\n")
            specs += ["1: :->command", "*:: :->argument"]
            lines.append("  _arguments -C -s -S : \\\n")
        else:
            lines.append("  _arguments -s -S : \\\n")
        lines += [f"    {shlex.quote(s)} \\\n" for s in specs[:-1]]
        lines.append(f"    {shlex.quote(specs[-1])}" + (" && ret=0\n" if cmd.subcommands else "\n"))
        if cmd.subcommands:
            entries = "".join(f"        {shlex.quote(f'{name}:{text}')}\n" for name, text in cmd.subcommands)
            cases = "".join(f"        ({name}) {_zsh_function((*cmd.path, name))} && ret=0 ;;\n" for name, _ in cmd.subcommands)
            lines.append(
                "  case $state in\n"
                "    (command)\n"
                f"      local -a commands=(\n{entries}      )\n"
                f"      _describe -t commands {shlex.quote(' '.join(cmd.path) + ' command')} commands && ret=0\n"
                "      ;;\n"
                "    (argument)\n"
                f"      curcontext=${{curcontext%:*:*}}:{'-'.join(cmd.path)}-$words[1]:\n"
                f"      case $words[1] in\n{cases}      esac\n"
                "      ;;\n"
                "  esac\n"
                "  return ret\n"
            )
        lines.append("}\n")
        out += lines
    out.append('\nif [[ $funcstack[1] == _hectl ]]; then\n  _hectl "$@"\nelse\n  compdef _hectl hectl\nfi\n')
    return "".join(out)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_FISH_FUNCTIONS = r"""
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
"""


def render_fish(tree: list[CommandSpec]) -> str:
    """The fish script: one ``complete`` line per subcommand and option, guarded by the command path."""
    commands = " ".join(_fish_quote(" ".join(c.path)) for c in tree)
    value_options = sorted(" ".join(c.path) + " " + n for c in tree for o in c.options if o.takes_value for n in o.names)
    out = [
        _header("#", "fish"),
        f"\nset -g __hectl_commands {commands}\n",
        "set -g __hectl_value_options " + " ".join(_fish_quote(v) for v in value_options) + "\n",
        _FISH_FUNCTIONS,
    ]
    for cmd in tree:
        guard = f"complete -c hectl -n {_fish_quote('__hectl_at ' + ' '.join(cmd.path))}"
        out.append(f"\n# {' '.join(cmd.path)}\n")
        out += [f"{guard} -a {name} -d {_fish_quote(text)}\n" for name, text in cmd.subcommands]
        for opt in cmd.options:
            flags = " ".join(
                f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" if len(n) == 2 else f"-o {n[1:]}" for n in opt.names
            )
            if opt.dynamic:
                flags += f" -x -a {_fish_quote(f'(__hectl_complete {opt.dynamic})')}"
            elif opt.choices:
                flags += f" -x -a {_fish_quote(' '.join(opt.choices))}"
            elif opt.paths == "dir":
                flags += " -x -a '(__fish_complete_directories (commandline -ct))'"
            elif opt.paths == "file":
                flags += " -r -F"
            elif opt.takes_value:
                flags += " -x"
            out.append(f"{guard} {flags} -d {_fish_quote(opt.help)}\n")
        arg = cmd.argument
        if arg is not None and arg.paths:
            out.append(f"{guard} -F -d {_fish_quote(arg.metavar)}\n")
        elif arg is not None and arg.choices:
            words = f"(__hectl_keyvalue {_keyvalue_args(arg)})" if _keyvalue_args(arg) else " ".join(arg.choices)
            out.append(f"{guard} -a {_fish_quote(words)} -d {_fish_quote(arg.metavar)}\n")
    return "".join(out)


SCRIPTS: dict[str, Callable[[list[CommandSpec]], str]] = {
    "hectl.bash": render_bash,
    "_hectl": render_zsh,
    "hectl.fish": render_fish,
}


def write_scripts(outdir: str) -> list[str]:
    """Write every completion script into ``outdir``; return their paths."""
    tree = command_tree()
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, render in SCRIPTS.items():
        path = os.path.join(outdir, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(render(tree))
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 2:
        written = write_scripts(sys.argv[1])
    elif len(sys.argv) == 3 and sys.argv[1] == "--man":
        from hectl.cli.manpages import write_man_pages

        written = write_man_pages(sys.argv[2])
    else:
        sys.exit("usage: python -m hectl.cli.scripts OUTDIR | --man MANDIR  (the repository's: completions, docs/man)")
    print("\n".join(written))
