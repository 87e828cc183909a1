import json
json.dumps({"leaf": True})
