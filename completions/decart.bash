# bash completion for decart — generated from the decart app (`decart completion SHELL`, or `make completions`); do not edit.
# Install: decart completion bash > ~/.local/share/bash-completion/completions/decart
_decart() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="decart" w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$path:$w" in
            "decart:bench"|"decart:completion"|"decart:models"|"decart models:list"|"decart models:show"|"decart:netcheck"|"decart:serve"|"decart:stream"|"decart:token"|"decart token:create") path="$path $w" ;;
        esac
    done
    case "$path:$prev" in
        "decart:--log-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart bench:--model"|"decart bench:-m") COMPREPLY=($(compgen -W 'lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest' -- "$cur")); return ;;
        "decart bench:--transport") COMPREPLY=($(compgen -W 'livekit webrtc' -- "$cur")); return ;;
        "decart bench:--codec") COMPREPLY=($(compgen -W 'h264 vp8 vp9' -- "$cur")); return ;;
        "decart bench:--duration"|"decart bench:-d") COMPREPLY=(); return ;;
        "decart bench:--sessions"|"decart bench:-n") COMPREPLY=(); return ;;
        "decart bench:--latency") COMPREPLY=($(compgen -W 'auto marker frame-timing' -- "$cur")); return ;;
        "decart bench:--api-key") COMPREPLY=(); return ;;
        "decart bench:--api-key-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart bench:--token") COMPREPLY=(); return ;;
        "decart bench:--base-url") COMPREPLY=(); return ;;
        "decart bench:--realtime-url") COMPREPLY=(); return ;;
        "decart netcheck:--timeout") COMPREPLY=(); return ;;
        "decart netcheck:--ca-bundle") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart netcheck:--endpoints") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart netcheck:--api-key") COMPREPLY=(); return ;;
        "decart netcheck:--api-key-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart netcheck:--token") COMPREPLY=(); return ;;
        "decart serve:--host") COMPREPLY=(); return ;;
        "decart serve:--port") COMPREPLY=(); return ;;
        "decart serve:--api-key") COMPREPLY=(); return ;;
        "decart serve:--drop-after") COMPREPLY=(); return ;;
        "decart serve:--drop-connections") COMPREPLY=(); return ;;
        "decart serve:--reject-first") COMPREPLY=(); return ;;
        "decart serve:--ack-delay") COMPREPLY=(); return ;;
        "decart serve:--error-after") COMPREPLY=(); return ;;
        "decart serve:--tick-interval") COMPREPLY=(); return ;;
        "decart serve:--queue") COMPREPLY=(); return ;;
        "decart serve:--republish-after") COMPREPLY=(); return ;;
        "decart serve:--lk-drop-after") COMPREPLY=(); return ;;
        "decart serve:--lk-single-pc") COMPREPLY=($(compgen -W 'on off' -- "$cur")); return ;;
        "decart stream:--model"|"decart stream:-m") COMPREPLY=($(compgen -W 'lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest' -- "$cur")); return ;;
        "decart stream:--camera"|"decart stream:-c") COMPREPLY=($(compgen -W 'front back test' -- "$cur")); return ;;
        "decart stream:--input"|"decart stream:-i") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart stream:--mirror") COMPREPLY=($(compgen -W 'auto on off' -- "$cur")); return ;;
        "decart stream:--prompt"|"decart stream:-p") COMPREPLY=(); return ;;
        "decart stream:--image") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart stream:--prompts") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart stream:--duration"|"decart stream:-d") COMPREPLY=(); return ;;
        "decart stream:--record"|"decart stream:-r") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart stream:--transport") COMPREPLY=($(compgen -W 'livekit webrtc' -- "$cur")); return ;;
        "decart stream:--codec") COMPREPLY=($(compgen -W 'h264 vp8 vp9' -- "$cur")); return ;;
        "decart stream:--speed") COMPREPLY=(); return ;;
        "decart stream:--latency") COMPREPLY=($(compgen -W 'auto marker frame-timing' -- "$cur")); return ;;
        "decart stream:--api-key") COMPREPLY=(); return ;;
        "decart stream:--api-key-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart stream:--token") COMPREPLY=(); return ;;
        "decart stream:--base-url") COMPREPLY=(); return ;;
        "decart stream:--realtime-url") COMPREPLY=(); return ;;
        "decart token:--ttl") COMPREPLY=(); return ;;
        "decart token:--model") COMPREPLY=($(compgen -W 'lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest' -- "$cur")); return ;;
        "decart token:--origin") COMPREPLY=(); return ;;
        "decart token:--max-session-duration") COMPREPLY=(); return ;;
        "decart token:--metadata") COMPREPLY=(); return ;;
        "decart token:--api-key") COMPREPLY=(); return ;;
        "decart token:--api-key-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart token:--base-url") COMPREPLY=(); return ;;
        "decart token create:--ttl") COMPREPLY=(); return ;;
        "decart token create:--model") COMPREPLY=($(compgen -W 'lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest' -- "$cur")); return ;;
        "decart token create:--origin") COMPREPLY=(); return ;;
        "decart token create:--max-session-duration") COMPREPLY=(); return ;;
        "decart token create:--metadata") COMPREPLY=(); return ;;
        "decart token create:--api-key") COMPREPLY=(); return ;;
        "decart token create:--api-key-file") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        "decart token create:--base-url") COMPREPLY=(); return ;;
    esac
    case "$path" in
        "decart") COMPREPLY=($(compgen -W '--version --debug --verbose -v --log-file --help -h bench completion models netcheck serve stream token' -- "$cur")) ;;
        "decart bench") COMPREPLY=($(compgen -W '--model -m --transport --codec --duration -d --sessions -n --latency --json --api-key --api-key-file --token --base-url --realtime-url --local --help -h' -- "$cur")) ;;
        "decart completion") COMPREPLY=($(compgen -W '--help -h bash zsh fish' -- "$cur")) ;;
        "decart models") COMPREPLY=($(compgen -W '--json --help -h list show' -- "$cur")) ;;
        "decart models list") COMPREPLY=($(compgen -W '--json --help -h' -- "$cur")) ;;
        "decart models show") COMPREPLY=($(compgen -W '--json --help -h lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest' -- "$cur")) ;;
        "decart netcheck") COMPREPLY=($(compgen -W '--json --timeout --staging --auth --ca-bundle --endpoints --api-key --api-key-file --token --help -h' -- "$cur")) ;;
        "decart serve") COMPREPLY=($(compgen -W '--host --port --api-key --drop-after --drop-connections --reject-first --ack-delay --no-ack --error-after --garbage --tick-interval --queue --republish-after --lk-drop-after --lk-single-pc --loopback-only --help -h' -- "$cur")) ;;
        "decart stream") COMPREPLY=($(compgen -W '--model -m --camera -c --input -i --loop --list-cameras --mirror --prompt -p --image --no-enhance --prompts --duration -d --record -r --no-window --transport --codec --speed --no-reconnect --latency --json --api-key --api-key-file --token --base-url --realtime-url --local --help -h' -- "$cur")) ;;
        "decart token") COMPREPLY=($(compgen -W '--ttl --model --origin --max-session-duration --metadata --json --api-key --api-key-file --base-url --local --help -h create' -- "$cur")) ;;
        "decart token create") COMPREPLY=($(compgen -W '--ttl --model --origin --max-session-duration --metadata --json --api-key --api-key-file --base-url --local --help -h' -- "$cur")) ;;
    esac
}
complete -F _decart decart
