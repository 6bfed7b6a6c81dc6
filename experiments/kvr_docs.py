#!/usr/bin/env python3
"""Generates kvr's man page and bash completion from the program's own help text, at build
time, so both follow the options as they change:

    kvr_docs.py man  PATH/TO/kvr OUT.1     # troff (man 7 man)
    kvr_docs.py bash PATH/TO/kvr OUT       # bash completion (complete -F _kvr kvr)

The commands come from `kvr help` (lines "  NAME  summary" under "commands:"), each command's
options from `kvr NAME --help` (and `kvr model show --help`, `kvr bench attention --help`, ...
for the sub-commands a help text names)."""

import re
import subprocess
import sys


def run(kvr, *args):
    p = subprocess.run([kvr, *args], capture_output=True, text=True)
    return p.stdout  # a sanitizer build may exit non-zero after printing the help


def commands(kvr):
    out, cmds, on = run(kvr, "help"), [], False
    for line in out.splitlines():
        if line.startswith("commands:"):
            on = True
        elif on and re.match(r"^  [a-z]", line):
            name, summary = line.split(None, 1)
            cmds.append((name, summary.strip()))
        elif on and not line.strip():
            on = bool(not cmds)
    if not cmds:
        sys.exit("kvr_docs.py: no commands in `kvr help`")
    return cmds


def usage_block(text):
    """The usage lines of a help text: up to its first blank line."""
    return text.split("\n\n", 1)[0]


def subcommands(kvr, name, text):
    """The sub-commands a command's usage names (`kvr model <list|show>`, `kvr bench sim|search`,
    `kvr bench attention --help`), each with its own help text."""
    subs = []
    for m in re.finditer(r"kvr %s <?([a-z]+(?:\|[a-z]+)*)>?" % name, usage_block(text)):
        subs += [s for s in m.group(1).split("|") if s not in subs]
    return [(s, run(kvr, name, s, "--help")) for s in subs]


# an option line of kvr_opt_help: "  -m, --model M   help" or "      --chunk N   help"
OPTION_LINE = re.compile(r"^  (?:-([A-Za-z0-9]), |    )(--[a-z][a-z0-9-]*)(?: (\S+))?(.*)$", re.M)
FILE_ARGS = {"FILE", "DIR", "PATH", "CSV", "PROG"}


def option_table(text):
    """(short, long, argument, help) of each option line: the command's option table, not the
    options its prose mentions."""
    return [(m.group(1), m.group(2), m.group(3), m.group(4)) for m in OPTION_LINE.finditer(text)]


def options(text):
    return sorted({o for _, o, _, _ in option_table(text)})


def file_options(text):
    """The options whose value is a path (a FILE, DIR, ... argument; a profile or model file)."""
    out = []
    for short, long, arg, help in option_table(text):
        named = long in ("--model", "--machine") and re.search(r"\bfile\b|\.ini|config\.json", help)
        if arg and (arg in FILE_ARGS or named):
            out += [long] + (["-" + short] if short else [])
    return out


def value_options(text):
    """The options that take a value (the word after them is not an option)."""
    out = []
    for short, long, arg, _ in option_table(text):
        if arg:
            out += [long] + (["-" + short] if short else [])
    return out


def troff(text):
    out = []
    for line in text.rstrip("\n").splitlines():
        line = line.replace("\\", "\\e").replace("-", "\\-")  # \- : options stay ASCII
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def man(kvr, cmds):
    version = run(kvr, "--version").splitlines()[0] if run(kvr, "--version") else "kvr"
    parts = [".TH KVR 1 \"\" \"%s\" \"kvrun\"" % version,
             ".SH NAME", "kvr \\- predict, search and measure the TTFT of parallel LLM prefill "
             "(KV-Runahead)",
             ".SH SYNOPSIS", ".B kvr", ".I command", "[options]", ".SH DESCRIPTION",
             ".nf", troff(run(kvr, "help")), ".fi", ".SH COMMANDS"]
    for name, summary in cmds:
        text = run(kvr, name, "--help")
        parts += [".SS %s" % name, troff(summary), ".PP", ".nf", troff(text), ".fi"]
        for sub, stext in subcommands(kvr, name, text):
            if stext and stext != text:
                parts += [".SS %s %s" % (name, sub), ".nf", troff(stext), ".fi"]
    parts += [".SH ENVIRONMENT", ".TP", ".B KVR_DATADIR",
              "The data directory (profiles, models, calibration, sweep files, plot scripts); "
              "default PREFIX/share/kvrun beside the program.",
              ".TP", ".B KVR_LOG",
              "The log level on stderr: error, warn (the default), info or debug; any other "
              "value is refused (exit 2).",
              ".SH EXIT STATUS", ".TP", ".B 0", "ok", ".TP", ".B 1", "runtime failure",
              ".TP", ".B 2", "usage or input error (the message names the bad value and where "
              "it came from)", ".TP", ".B 3", "a plan that does not fit in GPU memory",
              ".SH FILES", ".TP", ".I PREFIX/share/kvrun",
              "data/, plots/, experiments/sweeps/ and the lookup table's JSON Schema.",
              ".SH SEE ALSO", "README.md, partition/README.md of kvrun"]
    return "\n".join(parts) + "\n"


def positionals(key, text):
    """Words a command takes as arguments: `kvr plot`'s figures, `kvr bench search`'s parts
    (the [a|b|c] lists of its usage lines)."""
    words = []
    m = re.search(r"NAME: ([a-z0-9, \n]+?), or all", text)
    if key == "plot" and m:
        words += [w.strip() for w in m.group(1).split(",")] + ["all"]
    for line in usage_block(text).splitlines():
        if re.search(r"kvr %s( |$)" % re.escape(key), line):
            for m in re.finditer(r"\[([a-z]+(?:\|[a-z]+)+)\]", line):
                words += m.group(1).split("|")
    return words


def bash_case(key, text, extra_words=(), files=False):
    """One `case` arm per command (or command and sub-command): its options, the options whose
    value is a file, those that take any value, and its positional words."""
    q = lambda words: " ".join(sorted(set(words)))  # noqa: E731
    return ('        "%s") opts="%s" fileopts=" %s " valopts=" %s " words="%s" files=%s ;;'
            % (key, q(options(text)), q(file_options(text)), q(value_options(text)),
               q(list(positionals(key, text)) + list(extra_words)),
               "yes" if files else "no"))


def bash(kvr, cmds):
    names = " ".join(n for n, _ in cmds)
    models = [l.split()[0] for l in run(kvr, "model", "list").splitlines()[1:] if l.strip()]
    cases, subs_of, help_subs = [], {}, []
    for name, _ in cmds:
        text = run(kvr, name, "--help")
        subs = [(s, t) for s, t in subcommands(kvr, name, text)]
        if subs:
            subs_of[name] = [s for s, _ in subs]
            help_subs.append('            %s) COMPREPLY=($(compgen -W "%s" -- "$cur")) ;;'
                             % (name, " ".join(subs_of[name])))
        for sub, stext in subs:
            own = stext if stext and stext != text else text
            cases.append(bash_case("%s %s" % (name, sub), own,
                                   models if (name, sub) == ("model", "show") else (),
                                   files=(name, sub) == ("model", "show")))
        if not subs:
            cases.append(bash_case(name, text, files=name == "sweep"))
    with_subs = "|".join(subs_of)
    return """# bash completion for kvr (generated from its help text by experiments/kvr_docs.py): the
# commands, each command's (and sub-command's) options from its option table, file names after
# an option whose value is a path, and the words a command takes (figures, sub-commands).
_kvr() {
    local cur prev cmd key opts fileopts valopts words files
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%(names)s help --version --help" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    if [ "$cmd" = help ]; then
        if [ "$COMP_CWORD" -eq 2 ]; then
            COMPREPLY=($(compgen -W "%(names)s schemes" -- "$cur"))
        elif [ "$COMP_CWORD" -eq 3 ]; then
            case ${COMP_WORDS[2]} in
%(help_subs)s
            esac
        fi
        return
    fi
    key=$cmd
    case $cmd in
        %(with_subs)s)
            if [ "$COMP_CWORD" -eq 2 ]; then
                key="$cmd --subcommands"
            else
                key="$cmd ${COMP_WORDS[2]}"
            fi ;;
    esac
    case $key in
%(subcommand_cases)s
%(cases)s
        *) return ;;
    esac
    if [[ $fileopts == *" $prev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur")); return
    fi
    [[ $valopts == *" $prev "* ]] && return
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        [ "$files" = yes ] && COMPREPLY+=($(compgen -f -- "$cur"))
    fi
}
complete -F _kvr kvr
""" % {"names": names, "help_subs": "\n".join(help_subs), "with_subs": with_subs or "-",
       "subcommand_cases": "\n".join(
           '        "%s --subcommands") opts="--help" fileopts="  " valopts="  " words="%s" files=no ;;'
           % (n, " ".join(s)) for n, s in subs_of.items()),
       "cases": "\n".join(cases)}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("man", "bash"):
        sys.exit(__doc__)
    mode, kvr, out = sys.argv[1:]
    cmds = commands(kvr)
    text = man(kvr, cmds) if mode == "man" else bash(kvr, cmds)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
