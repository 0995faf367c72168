"""REST API of copy trading: links, copy history with skip reasons, rules, rule hits, templates, the web terminal."""
