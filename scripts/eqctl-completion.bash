# bash completion for eqctl. Source it, or install as /usr/share/bash-completion/completions/eqctl.
# Channel and bus names are asked from the running daemon (honours --socket and EQD_SOCKET).

_eqctl_query() {  # _eqctl_query SOCKET_ARGS... -- prints channel or bus names
  local what=$1
  shift
  if [ "$what" = channels ]; then
    eqctl "$@" --json channels 2>/dev/null | sed -n 's/^ *"channel": "\([^"]*\)".*/\1/p'
  else
    eqctl "$@" --json status 2>/dev/null | sed -n 's/^ *"bus": "\([^"]*\)".*/\1/p'
  fi
}

_eqctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  local commands="status channels controllers watch assign release set"
  local sock=() cmd="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      --socket) sock=(--socket "${words[i + 1]}"); ((i++)) ;;
      --json | -h | --help) ;;
      *) [ -z "$cmd" ] && cmd=${words[i]} ;;
    esac
  done
  case $prev in
    --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --bus) COMPREPLY=($(compgen -W "$(_eqctl_query buses "${sock[@]}")" -- "$cur")); return ;;
    --role) COMPREPLY=($(compgen -W "eq test" -- "$cur")); return ;;
    --max-charge-W | --max-discharge-W | --max-charge-A | --max-discharge-A | --v-min-V | --v-max-V | \
      --hysteresis-V | -n | --interval) return ;;
  esac
  case $cmd in
    "") COMPREPLY=($(compgen -W "$commands --socket --json --help" -- "$cur")) ;;
    status | controllers) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    channels) COMPREPLY=($(compgen -W "--bus --role --help" -- "$cur")) ;;
    watch) COMPREPLY=($(compgen -W "--interval --bus --help" -- "$cur")) ;;
    assign)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--bus --max-charge-W --max-discharge-W --max-charge-A --max-discharge-A --v-min-V --v-max-V --hysteresis-V --help" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(_eqctl_query channels "${sock[@]}")" -- "$cur"))
      fi ;;
    release)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--help" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(_eqctl_query channels "${sock[@]}")" -- "$cur"))
      fi ;;
    set)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--bus --help" -- "$cur"))
      else
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -W "tau_s= deadband_W= target_W= use_forecast=" -- "$cur"))
      fi ;;
  esac
}
complete -F _eqctl eqctl
