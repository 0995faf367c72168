"""The EA protocol: tokens, heartbeats, live state and the command queue between the server and the EAs."""
