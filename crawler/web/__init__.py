"""`newswatch serve`: a read-only window on the database for analysts and operators. `app`
builds the ASGI app (routes, the token, security headers, reading the database off the event
loop); each page module answers its routes; templates render everything escaped, with no
JavaScript."""
