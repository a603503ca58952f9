"""Checks a polkit policy file against the rules of polkit's policyconfig DTD (the DTD itself is
fetched from the web by validators, which CI cannot reach): the element structure, action ids,
and the allowed values of the defaults."""

import re
import sys
import xml.dom.minidom

ALLOWED = {"no", "yes", "auth_self", "auth_admin", "auth_self_keep", "auth_admin_keep"}
ACTION_CHILDREN = {"description", "message", "vendor", "vendor_url", "icon_name", "defaults", "annotate"}

path = sys.argv[1]
doc = xml.dom.minidom.parse(path)
if doc.doctype is None or doc.doctype.name != "policyconfig":
    sys.exit(f"{path}: the DOCTYPE must be policyconfig")
root = doc.documentElement
if root.tagName != "policyconfig":
    sys.exit(f"{path}: the root must be <policyconfig>")
actions = root.getElementsByTagName("action")
if not actions:
    sys.exit(f"{path}: no actions")
for a in actions:
    aid = a.getAttribute("id")
    if not re.fullmatch(r"[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9-]*)+", aid):
        sys.exit(f"{path}: bad action id {aid!r}")
    children = {c.tagName for c in a.childNodes if c.nodeType == c.ELEMENT_NODE}
    if not children <= ACTION_CHILDREN:
        sys.exit(f"{path}: {aid}: unexpected elements {children - ACTION_CHILDREN}")
    for needed in ("description", "message", "defaults"):
        if needed not in children:
            sys.exit(f"{path}: {aid}: <{needed}> missing")
    defaults = a.getElementsByTagName("defaults")[0]
    for d in defaults.childNodes:
        if d.nodeType != d.ELEMENT_NODE:
            continue
        if d.tagName not in ("allow_any", "allow_inactive", "allow_active"):
            sys.exit(f"{path}: {aid}: unexpected <{d.tagName}> in defaults")
        value = d.firstChild.data.strip() if d.firstChild else ""
        if value not in ALLOWED:
            sys.exit(f"{path}: {aid}: {d.tagName} has the invalid value {value!r}")
    print(f"{path}: {aid} ok")
