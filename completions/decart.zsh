#compdef decart
# zsh completion for decart — generated from the decart app (`decart completion SHELL`, or `make completions`); do not edit.
# Install: decart completion zsh > ~/.zfunc/_decart (a directory on $fpath), then run compinit.
_decart() {
    local path_="decart" prev="${words[CURRENT-1]}" w i
    for ((i = 2; i < CURRENT; i++)); do
        w="${words[i]}"
        case "$path_:$w" in
            "decart:bench"|"decart:completion"|"decart:models"|"decart models:list"|"decart models:show"|"decart:netcheck"|"decart:serve"|"decart:stream"|"decart:token"|"decart token:create") path_="$path_ $w" ;;
        esac
    done
    case "$path_:$prev" in
        "decart:--log-file") _files; return ;;
        "decart bench:--model"|"decart bench:-m") compadd -- lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest; return ;;
        "decart bench:--transport") compadd -- livekit webrtc; return ;;
        "decart bench:--codec") compadd -- h264 vp8 vp9; return ;;
        "decart bench:--duration"|"decart bench:-d") return ;;
        "decart bench:--sessions"|"decart bench:-n") return ;;
        "decart bench:--latency") compadd -- auto marker frame-timing; return ;;
        "decart bench:--api-key") return ;;
        "decart bench:--api-key-file") _files; return ;;
        "decart bench:--token") return ;;
        "decart bench:--base-url") return ;;
        "decart bench:--realtime-url") return ;;
        "decart netcheck:--timeout") return ;;
        "decart netcheck:--ca-bundle") _files; return ;;
        "decart netcheck:--endpoints") _files; return ;;
        "decart netcheck:--api-key") return ;;
        "decart netcheck:--api-key-file") _files; return ;;
        "decart netcheck:--token") return ;;
        "decart serve:--host") return ;;
        "decart serve:--port") return ;;
        "decart serve:--api-key") return ;;
        "decart serve:--drop-after") return ;;
        "decart serve:--drop-connections") return ;;
        "decart serve:--reject-first") return ;;
        "decart serve:--ack-delay") return ;;
        "decart serve:--error-after") return ;;
        "decart serve:--tick-interval") return ;;
        "decart serve:--queue") return ;;
        "decart serve:--republish-after") return ;;
        "decart serve:--lk-drop-after") return ;;
        "decart serve:--lk-single-pc") compadd -- on off; return ;;
        "decart stream:--model"|"decart stream:-m") compadd -- lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest; return ;;
        "decart stream:--camera"|"decart stream:-c") compadd -- front back test; return ;;
        "decart stream:--input"|"decart stream:-i") _files; return ;;
        "decart stream:--mirror") compadd -- auto on off; return ;;
        "decart stream:--prompt"|"decart stream:-p") return ;;
        "decart stream:--image") _files; return ;;
        "decart stream:--prompts") _files; return ;;
        "decart stream:--duration"|"decart stream:-d") return ;;
        "decart stream:--record"|"decart stream:-r") _files; return ;;
        "decart stream:--transport") compadd -- livekit webrtc; return ;;
        "decart stream:--codec") compadd -- h264 vp8 vp9; return ;;
        "decart stream:--speed") return ;;
        "decart stream:--latency") compadd -- auto marker frame-timing; return ;;
        "decart stream:--api-key") return ;;
        "decart stream:--api-key-file") _files; return ;;
        "decart stream:--token") return ;;
        "decart stream:--base-url") return ;;
        "decart stream:--realtime-url") return ;;
        "decart token:--ttl") return ;;
        "decart token:--model") compadd -- lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest; return ;;
        "decart token:--origin") return ;;
        "decart token:--max-session-duration") return ;;
        "decart token:--metadata") return ;;
        "decart token:--api-key") return ;;
        "decart token:--api-key-file") _files; return ;;
        "decart token:--base-url") return ;;
        "decart token create:--ttl") return ;;
        "decart token create:--model") compadd -- lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest; return ;;
        "decart token create:--origin") return ;;
        "decart token create:--max-session-duration") return ;;
        "decart token create:--metadata") return ;;
        "decart token create:--api-key") return ;;
        "decart token create:--api-key-file") _files; return ;;
        "decart token create:--base-url") return ;;
    esac
    case "$path_" in
        "decart") compadd -- --version --debug --verbose -v --log-file --help -h bench completion models netcheck serve stream token ;;
        "decart bench") compadd -- --model -m --transport --codec --duration -d --sessions -n --latency --json --api-key --api-key-file --token --base-url --realtime-url --local --help -h ;;
        "decart completion") compadd -- --help -h bash zsh fish ;;
        "decart models") compadd -- --json --help -h list show ;;
        "decart models list") compadd -- --json --help -h ;;
        "decart models show") compadd -- --json --help -h lucy-2.1 lucy-latest lucy-2.5 lucy-2.6 lucy-vton-3.5 lucy-vton-3.6 lucy-vton-latest lucy-restyle-2 lucy-restyle-latest ;;
        "decart netcheck") compadd -- --json --timeout --staging --auth --ca-bundle --endpoints --api-key --api-key-file --token --help -h ;;
        "decart serve") compadd -- --host --port --api-key --drop-after --drop-connections --reject-first --ack-delay --no-ack --error-after --garbage --tick-interval --queue --republish-after --lk-drop-after --lk-single-pc --loopback-only --help -h ;;
        "decart stream") compadd -- --model -m --camera -c --input -i --loop --list-cameras --mirror --prompt -p --image --no-enhance --prompts --duration -d --record -r --no-window --transport --codec --speed --no-reconnect --latency --json --api-key --api-key-file --token --base-url --realtime-url --local --help -h ;;
        "decart token") compadd -- --ttl --model --origin --max-session-duration --metadata --json --api-key --api-key-file --base-url --local --help -h create ;;
        "decart token create") compadd -- --ttl --model --origin --max-session-duration --metadata --json --api-key --api-key-file --base-url --local --help -h ;;
    esac
}
_decart "$@"
