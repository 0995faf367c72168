"""REST API of the bonus back office, one module an area: campaigns, bonuses, triggers, monitoring, reports."""
