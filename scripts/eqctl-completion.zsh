#compdef eqctl
# zsh completion for eqctl (docs/eqctl.md). Install it as _eqctl in a directory of $fpath (the package
# puts it in /usr/share/zsh/vendor-completions), or source it after compinit. Bus, channel and
# controller names are asked from the running daemon through the eqctl being completed (so
# ./build/src/cli/eqctl works as well as eqctl on the PATH), with the --socket given on the line, else
# EQD_SOCKET. The same rules as scripts/eqctl-completion.bash.

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
    adoptable|forgettable)
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
  local exe=${(Q)words[1]}
  [[ $exe == '~/'* ]] && exe=$HOME/${exe#\~/}
  local -a sock
  local cmd= sub= nargs=0 i
  for (( i = 2; i < CURRENT; i++ )); do
    case $words[i] in
      --socket) sock=(--socket ${(Q)words[i+1]/#\~\//$HOME/}); (( i++ )) ;;
      --socket=*) sock=(--socket ${(Q)words[i]#--socket=}) ;;
      --bus|--role|-n|--interval|--max-charge-W|--max-discharge-W|--max-charge-A|--max-discharge-A|\
      --v-min-V|--v-max-V|--hysteresis-V|--efficiency|--capacity-Wh|--soc-min-pct|--soc-max-pct|--since|--user|--channel|--limit|\
      --from|--to|--by|--tariff|--format|--buffer-capacity-kWh) (( i++ )) ;;  # and their value
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=$words[i]
        elif [[ $cmd == controllers && -z $sub ]]; then
          sub=$words[i]
        else
          (( nargs++ ))
        fi ;;
    esac
  done
  local cur=$words[CURRENT] prev=$words[CURRENT-1]

  case $prev in
    --socket) _files; return ;;
    --bus) compadd -- ${(f)"$(_eqctl_ask buses $exe $sock)"}; return ;;
    --role) compadd -- eq test; return ;;
    --since) compadd -- 1h 24h 7d 30d; return ;;
    --user) _users; return ;;
    --channel) compadd -- ${(f)"$(_eqctl_ask channels $exe $sock)"}; return ;;
    --limit|--buffer-capacity-kWh) _message 'a number'; return ;;
    --from|--to) _message 'a local date or time (2026-12-01, 2026-12-01T08:00)'; return ;;
    --by) compadd -- hour day week month; return ;;
    --format) compadd -- table csv json html; return ;;
    --tariff) _files; return ;;
    --max-charge-W|--max-discharge-W|--max-charge-A|--max-discharge-A|--v-min-V|--v-max-V|--hysteresis-V|\
    --efficiency|--capacity-Wh|--soc-min-pct|--soc-max-pct|-n|--interval) _message 'a number'; return ;;
  esac

  local -a opts
  case $cmd in
    channels) opts=(--bus --role) ;;
    controllers) [[ $sub == adopt ]] && opts=(--bus) ;;
    watch) opts=(--interval --bus) ;;
    assign) opts=(--bus --max-charge-W --max-discharge-W --max-charge-A --max-discharge-A --v-min-V --v-max-V
                  --hysteresis-V --efficiency --capacity-Wh --soc-min-pct --soc-max-pct) ;;
    set) opts=(--bus) ;;
    audit) opts=(--since --user --channel --limit) ;;
    report) opts=(--from --to --by --bus --tariff --format --buffer-capacity-kWh) ;;
  esac
  if [[ $cur == -* ]]; then
    compadd -- $opts --json --socket --version --help
    return
  fi

  local -a names
  case $cmd in
    '')
      names=('status:per bus: net, free and equalization power, energy, counts by health'
             'channels:one row per channel'
             'controllers:the controllers; adopt or forget one'
             'watch:live view of status and equalization channels'
             'assign:put a channel into equalization mode'
             'release:take a channel out of equalization mode'
             'set:change bus parameters at run time'
             'audit:who changed what: the audit log'
             'report:grid energy saved by equalization per period and bus'
             'backup:write an archive of the history, state and configuration')
      _describe -t commands 'eqctl command' names ;;
    controllers)
      if [[ -z $sub ]]; then
        names=('adopt:let eqd command a discovered controller' 'forget:remove a controller from the connection cache')
        _describe -t commands 'controllers command' names
      elif (( nargs == 0 )) && [[ $sub == adopt ]]; then
        compadd -- ${(f)"$(_eqctl_ask adoptable $exe $sock)"}
      elif (( nargs == 0 )) && [[ $sub == forget ]]; then
        compadd -- ${(f)"$(_eqctl_ask forgettable $exe $sock)"}
      fi ;;
    assign) (( nargs == 0 )) && compadd -- ${(f)"$(_eqctl_ask test-channels $exe $sock)"} ;;
    release) (( nargs == 0 )) && compadd -- ${(f)"$(_eqctl_ask eq-channels $exe $sock)"} ;;
    backup) (( nargs == 0 )) && _files ;;  # FILE: the archive to write
    set)
      # The names are core::kRuntimeParams (include/eqd/core/params.hpp; a test keeps them in step).
      if [[ $cur == (use_forecast|learn_forecast|stat_forecast|valley_fill)=* ]]; then
        compadd -P ${cur%%=*}= -- true false
      elif [[ $cur == mode=* ]]; then
        compadd -P mode= -- balance caps
      else
        compadd -S '' -- tau_s= deadband_W= target_W= use_forecast= learn_forecast= stat_forecast= plan_travel_weight_s= mode= import_limit_W= \
          export_limit_W= import_limit_average_s= valley_fill= fill_margin= fill_lead_s= fill_energy_Wh= level_shaving=  # NAME= waits for its value
      fi ;;
  esac
}

# Autoloaded from $fpath (this file is then the body of _eqctl): complete now. Sourced: register.
if [[ $funcstack[1] == _eqctl ]]; then
  _eqctl "$@"
else
  compdef _eqctl eqctl
fi
