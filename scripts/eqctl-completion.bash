# bash completion for eqctl (docs/eqctl.md). Source it, or install it as
# /usr/share/bash-completion/completions/eqctl. Bus, channel and controller names are asked from the
# running daemon through the eqctl being completed (so ./build/src/cli/eqctl works as well as eqctl
# on the PATH), with the --socket given on the line, else EQD_SOCKET.
# Works with and without the bash-completion package (it splits the line itself).

# _eqctl_ask WHAT EQCTL [--socket PATH]: names from the daemon, one a line. WHAT: buses, test-channels
# (what `assign` takes), eq-channels (what `release` takes), channels (all: `audit --channel`),
# adoptable, forgettable (controllers).
# Reads eqctl's --json output, which is indented by 2 per level: list entries' fields sit at 6.
_eqctl_ask() {
  local what=$1
  shift
  case $what in
    buses) "$@" --json status 2>/dev/null | sed -n 's/^      "bus": "\([^"]*\)".*/\1/p' ;;
    test-channels) "$@" --json channels --role test 2>/dev/null | sed -n 's/^      "channel": "\([^"]*\)".*/\1/p' ;;
    eq-channels) "$@" --json channels --role eq 2>/dev/null | sed -n 's/^      "channel": "\([^"]*\)".*/\1/p' ;;
    channels) "$@" --json channels 2>/dev/null | sed -n 's/^      "channel": "\([^"]*\)".*/\1/p' ;;
    adoptable | forgettable)
      # adopt: controllers eqd does not command yet; forget: the ones not from the configuration.
      "$@" --json controllers 2>/dev/null | awk -v want="$what" '
        /^    \{/ { name = ""; adopted = ""; source = "" }
        /^      "controller": "/ { name = $2; gsub(/[",]/, "", name) }
        /^      "adopted": / { adopted = $2; gsub(/,/, "", adopted) }
        /^      "source": "/ { source = $2; gsub(/[",]/, "", source) }
        /^    \}/ { if (name != "" && (want == "adoptable" ? adopted == "false" : source != "config")) print name }' ;;
  esac
}

_eqctl() {
  # The words up to the cursor, split on blanks only: '=' and ':' (in COMP_WORDBREAKS) stay inside
  # words such as tau_s=3, with or without bash-completion's _init_completion.
  local line=${COMP_LINE:0:COMP_POINT} words=()
  read -ra words <<<"$line"
  [[ -z $line || $line == *[[:blank:]] ]] && words+=("")
  local cword=$((${#words[@]} - 1))
  local cur=${words[cword]} prev=""
  ((cword > 0)) && prev=${words[cword - 1]}
  local exe=${words[0]}
  # shellcheck disable=SC2088 # a literal ~/ as typed: expand it as the shell would
  [[ $exe == "~/"* ]] && exe=$HOME/${exe#"~/"}

  local sock=() cmd="" sub="" nargs=0 i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      --socket) sock=(--socket "${words[i + 1]/#\~\//$HOME/}"); ((i++)) ;;
      --socket=*) sock=(--socket "${words[i]#--socket=}") ;;
      --bus | --role | -n | --interval | --max-charge-W | --max-discharge-W | --max-charge-A | --max-discharge-A | \
        --v-min-V | --v-max-V | --hysteresis-V | --efficiency | --capacity-Wh | --soc-min-pct | --soc-max-pct | --since | --user | --channel | --limit | \
        --from | --to | --by | --tariff | --format | --buffer-capacity-kWh) ((i++)) ;;  # and their value
      -*) ;;
      *)
        if [ -z "$cmd" ]; then
          cmd=${words[i]}
        elif [ "$cmd" = controllers ] && [ -z "$sub" ]; then
          sub=${words[i]}
        else
          ((nargs++))
        fi ;;
    esac
  done

  COMPREPLY=()
  case $prev in
    --socket) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    --bus) mapfile -t COMPREPLY < <(compgen -W "$(_eqctl_ask buses "$exe" "${sock[@]}")" -- "$cur"); return ;;
    --role) mapfile -t COMPREPLY < <(compgen -W "eq test" -- "$cur"); return ;;
    --since) mapfile -t COMPREPLY < <(compgen -W "1h 24h 7d 30d" -- "$cur"); return ;;
    --user) mapfile -t COMPREPLY < <(compgen -u -- "$cur"); return ;;
    --channel) mapfile -t COMPREPLY < <(compgen -W "$(_eqctl_ask channels "$exe" "${sock[@]}")" -- "$cur"); return ;;
    --limit | --buffer-capacity-kWh) return ;;  # a number
    --from | --to) return ;;  # a local date or time: nothing to offer
    --by) mapfile -t COMPREPLY < <(compgen -W "hour day week month" -- "$cur"); return ;;
    --format) mapfile -t COMPREPLY < <(compgen -W "table csv json html" -- "$cur"); return ;;
    --tariff) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    --max-charge-W | --max-discharge-W | --max-charge-A | --max-discharge-A | --v-min-V | --v-max-V | \
      --hysteresis-V | --efficiency | --capacity-Wh | --soc-min-pct | --soc-max-pct | -n | --interval) return ;;  # a number: nothing to offer
  esac

  # Options of the command, and what its next argument may be (asked from the daemon only when needed).
  local opts="" args="" ask=""
  case $cmd in
    "") args="status channels controllers watch assign release set audit report backup" ;;
    channels) opts="--bus --role" ;;
    controllers)
      case $sub in
        "") args="adopt forget" ;;
        adopt) opts="--bus"; ((nargs == 0)) && ask=adoptable ;;
        forget) ((nargs == 0)) && ask=forgettable ;;
      esac ;;
    watch) opts="--interval --bus" ;;
    assign)
      opts="--bus --max-charge-W --max-discharge-W --max-charge-A --max-discharge-A --v-min-V --v-max-V --hysteresis-V --efficiency --capacity-Wh --soc-min-pct --soc-max-pct"
      ((nargs == 0)) && ask=test-channels ;;
    release) ((nargs == 0)) && ask=eq-channels ;;
    audit) opts="--since --user --channel --limit" ;;
    report) opts="--from --to --by --bus --tariff --format --buffer-capacity-kWh" ;;
    backup)  # FILE: a path to write
      if ((nargs == 0)) && [[ $cur != -* ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
      fi ;;
    set)
      opts="--bus"
      case $cur in
        # The names are core::kRuntimeParams (include/eqd/core/params.hpp; a test keeps them in step).
        use_forecast=* | learn_forecast=* | stat_forecast=* | valley_fill=*) args="${cur%%=*}=true ${cur%%=*}=false" ;;
        mode=*) args="mode=balance mode=caps" ;;
        *) args="tau_s= deadband_W= target_W= use_forecast= learn_forecast= stat_forecast= plan_travel_weight_s= mode= import_limit_W= export_limit_W=
                 import_limit_average_s= valley_fill= fill_margin= fill_lead_s= fill_energy_Wh= level_shaving=" ;;
      esac ;;
  esac
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts --json --socket --version --help" -- "$cur")
    return
  fi
  [ -n "$ask" ] && args=$(_eqctl_ask "$ask" "$exe" "${sock[@]}")
  mapfile -t COMPREPLY < <(compgen -W "$args" -- "$cur")
  # NAME= waits for its value.
  [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
  # bash replaces only what follows the last '=' of the word (COMP_WORDBREAKS): drop what precedes it.
  if [[ $cur == *=* && $COMP_WORDBREAKS == *=* ]]; then
    local pre=${cur%=*}=
    COMPREPLY=("${COMPREPLY[@]#"$pre"}")
  fi
  return 0
}
complete -F _eqctl eqctl
