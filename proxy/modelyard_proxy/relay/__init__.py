"""One request's run: the plan over a route's targets, each attempt, the commit point, outcomes and reporting."""
