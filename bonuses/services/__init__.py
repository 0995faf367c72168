"""Write paths of the bonuses app, one module a concern (see docs/bonuses.md, "Where the rules live")."""
