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


def subcommands(kvr, name, text):
    """`kvr bench attention --help` style sub-commands named in a help text."""
    subs = sorted(set(re.findall(r"kvr %s ([a-z]+)" % name, text)))
    return [(s, run(kvr, name, s, "--help")) for s in subs]


def options(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)))


def troff(text):
    out = []
    for line in text.rstrip("\n").splitlines():
        line = line.replace("\\", "\\e")
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
              ".SH EXIT STATUS", "0 ok, 1 runtime failure, 2 usage or input error.",
              ".SH FILES", ".TP", ".I PREFIX/share/kvrun",
              "data/, plots/, experiments/sweeps/ and the lookup table's JSON Schema.",
              ".SH SEE ALSO", "README.md, partition/README.md of kvrun"]
    return "\n".join(parts) + "\n"


def bash(kvr, cmds):
    cases = []
    for name, _ in cmds:
        text = run(kvr, name, "--help")
        words = options(text) + [s for s, _ in subcommands(kvr, name, text)]
        if name == "model":
            words += ["list", "show"]
        if name == "plot":
            words += ["all"] + ["fig%s" % f for f in "1 2 3 4 5 6 7 8 9a 9b 9c".split()]
        cases.append("        %s) opts=\"%s\" ;;" % (name, " ".join(sorted(set(words)))))
    return """# bash completion for kvr (generated from its help text by experiments/kvr_docs.py)
_kvr() {
    local cur prev cmd opts
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%s help --version" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    case $prev in
        --db|--out|-o|-d|--model|-m|--machine|-H|--timeline|--weights|--scripts|--from|--partition-file)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case $cmd in
%s
        *) opts="" ;;
    esac
    if [ "$cmd" = sweep ] && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -f -- "$cur")); return
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _kvr kvr
""" % (" ".join(n for n, _ in cmds), "\n".join(cases))


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
