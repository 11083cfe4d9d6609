# bash completion for decart — generated from the decart app by `make completions` (scripts/gen_completions.py); do not edit.
# Install: source this file from ~/.bashrc, or copy it to ~/.local/share/bash-completion/completions/decart
_decart() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="decart" w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$path:$w" in
            "decart:models"|"decart models:list"|"decart models:show"|"decart:netcheck"|"decart:serve"|"decart:stream"|"decart:token") path="$path $w" ;;
        esac
    done
    case "$path:$prev" in
        "decart:--log-file") COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case "$path" in
        "decart") COMPREPLY=($(compgen -W '--version --debug --verbose -v --log-file --help -h models netcheck serve stream token' -- "$cur")) ;;
        "decart models") COMPREPLY=($(compgen -W '--json --help -h list show' -- "$cur")) ;;
        "decart models list") COMPREPLY=($(compgen -W '--json --help -h' -- "$cur")) ;;
        "decart models show") COMPREPLY=($(compgen -W '--json --help -h lucy-2.1 lucy-latest lucy-2.5 lucy-vton-2 lucy-2.1-vton-2 lucy-vton-3 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest mirage_v2' -- "$cur")) ;;
        "decart netcheck") COMPREPLY=($(compgen -W '--help -h' -- "$cur")) ;;
        "decart serve") COMPREPLY=($(compgen -W '--help -h' -- "$cur")) ;;
        "decart stream") COMPREPLY=($(compgen -W '--help -h' -- "$cur")) ;;
        "decart token") COMPREPLY=($(compgen -W '--help -h' -- "$cur")) ;;
    esac
}
complete -o default -F _decart decart
