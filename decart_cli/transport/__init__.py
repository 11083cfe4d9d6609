"""The only code that touches the network: signaling (websockets), media (aiortc), REST (httpx)."""
