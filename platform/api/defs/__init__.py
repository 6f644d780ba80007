"""The HTTP API's wire models in one place (as Frigate keeps `api/defs`): what each route answers.

Response models here describe the answers byte for byte (field names, nesting, nulls, key order):
fields are declared in the order the domain builds them, numbers that may be integral or not are
`Number` (an int stays an int), and a model refuses keys it does not declare (`Out`), so a new
key in a domain answer fails the tests until it is declared here. Domain input schemas stay in
the domains (`*/schemas.py`); the agent's side of the wire stays in `tianwang.protocol`.
"""
