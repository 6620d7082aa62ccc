#!/usr/bin/env bash
# eqctl's shell completion against a real eqd + eqsim (issue #18 item 7).
#   eqctl_completion.sh bash EQSIM EQD EQCTL RIG_YAML BASH_COMPLETION_FILE
#     the completion function called as bash calls it (COMP_LINE, COMP_POINT), with and without the
#     bash-completion package, then an interactive `bash -i` on a pseudo-terminal (eqctl_pty.py);
#   eqctl_completion.sh zsh EQSIM EQD EQCTL RIG_YAML ZSH_COMPLETION_FILE
#     an interactive zsh with compinit on a pseudo-terminal; exit 77 (skipped) without zsh.
# eqctl is always typed as its full path: names must be asked through it, not an `eqctl` on the PATH.
# Bounded: < 40 s.
set -uo pipefail
SHELL_NAME=$1 EQSIM=$2 EQD=$3 EQCTL=$4 RIG=$5 COMPLETION=$6
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$SHELL_NAME" = zsh ] && ! command -v zsh >/dev/null; then
  echo "zsh is not installed (apt-get install zsh): skipped"
  exit 77
fi
source "$HERE/eqctl_rig.sh"
rig_start
wait_for 15 "the config buffers in equalization" '[.channels[] | select(.role == "equalization")] | length == 4' \
  -- channels --role eq

if [ "$SHELL_NAME" = bash ]; then
  # complete_line [--with-bash-completion] LINE: the candidates bash would get for LINE, sorted, on one line.
  complete_line() {
    local pre=""
    if [ "$1" = --with-bash-completion ]; then
      pre=". /usr/share/bash-completion/bash_completion;"
      shift
    fi
    # shellcheck disable=SC2016
    bash --norc --noprofile -c "$pre"'. "$1"; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}
      COMP_WORDS=($COMP_LINE); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); [[ $COMP_LINE == *" " ]] && ((COMP_CWORD++))
      $(complete -p eqctl | sed "s/.* -F \([^ ]*\) .*/\1/") eqctl "" ""
      printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION" "$1" | sort | tr '\n' ' ' | sed 's/ $//'
  }
  expect_completion() {  # expect_completion LINE EXPECTED-CANDIDATES (sorted, space-separated)
    local variant got
    for variant in "" --with-bash-completion; do
      [ -n "$variant" ] && [ ! -f /usr/share/bash-completion/bash_completion ] && continue
      got=$(complete_line $variant "$1")
      [ "$got" = "$2" ] || fail "completion of '$1'${variant:+ ($variant)}: got '$got', expected '$2'"
    done
  }
  step "bash: the completion function as bash calls it"
  [ -f /usr/share/bash-completion/bash_completion ] ||
    step "(bash-completion is not installed: only without it)"
  expect_completion "$EQCTL " "assign audit backup channels controllers release report set status watch"
  expect_completion "$EQCTL st" "status"
  expect_completion "$EQCTL status " ""  # nothing to add, and no --help pushed into the line
  expect_completion "$EQCTL status --j" "--json"
  expect_completion "$EQCTL controllers " "adopt forget"
  expect_completion "$EQCTL --json controllers f" "forget"
  expect_completion "$EQCTL controllers adopt " ""  # every controller of the demo rig is adopted (config)
  expect_completion "$EQCTL controllers forget " ""  # ... and from the configuration
  expect_completion "$EQCTL release " "aux1/16 cab1/15 cab1/16 cab2/16"  # the buffers only
  expect_completion "$EQCTL release cab1/15 " ""
  expect_completion "$EQCTL assign cab1/1" "cab1/1 cab1/10 cab1/11 cab1/12 cab1/13 cab1/14"  # test channels only
  expect_completion "$EQCTL channels --bus " "aux main"
  expect_completion "$EQCTL --socket $SOCK channels --bus m" "main"
  expect_completion "$EQCTL channels --role " "eq test"
  expect_completion "$EQCTL assign cab1/1 --e" "--efficiency"
  expect_completion "$EQCTL assign cab1/1 --max-charge-W " ""
  expect_completion "$EQCTL set --bus main t" "target_W= tau_s="
  expect_completion "$EQCTL set --bus main use_forecast=" "false true"
  expect_completion "$EQCTL audit --" "--channel --help --json --limit --since --socket --user --version"
  expect_completion "$EQCTL audit --since " "1h 24h 30d 7d"
  expect_completion "$EQCTL audit --channel cab2/1" "cab2/1 cab2/10 cab2/11 cab2/12 cab2/13 cab2/14 cab2/15 cab2/16"
  expect_completion "$EQCTL audit --user roo" "root"
  expect_completion "$EQCTL report --" \
    "--buffer-capacity-kWh --bus --by --format --from --help --json --socket --tariff --to --version"
  expect_completion "$EQCTL report --by " "day hour month week"
  expect_completion "$EQCTL report --format h" "html"
  expect_completion "$EQCTL report --by day --bus " "aux main"
  # Names come from the eqctl typed, with the --socket typed: a wrong socket gives no names.
  expect_completion "$EQCTL --socket $WORK/none.sock release " ""
  (unset EQD_SOCKET; [ "$(complete_line "$EQCTL release --socket $SOCK cab")" = "cab1/15 cab1/16 cab2/16" ]) ||
    fail "release with --socket after the command: names not asked through that socket"
fi

step "$SHELL_NAME: interactive, on a pseudo-terminal"
python3 "$HERE/eqctl_pty.py" complete "$SHELL_NAME" "$EQCTL" "$COMPLETION" || fail "$SHELL_NAME completion"
step "PASS"
