// Runs a polkit rules file as polkitd would (the rule functions it registers, called with an
// action and a subject) and checks what it decides: the oathkey user may use pcscd and its
// cards; nobody else gets a decision from this file, and other actions are left alone.
// Usage: node check_polkit_rules.js FILE
"use strict";
const fs = require("fs");
const vm = require("vm");

const rules = [];
const polkit = {
    Result: { YES: "yes", NO: "no", AUTH_ADMIN: "auth_admin", NOT_HANDLED: undefined },
    addRule: (f) => rules.push(f),
    log: () => {},
};
vm.runInNewContext(fs.readFileSync(process.argv[2], "utf8"), { polkit });
if (rules.length === 0) throw new Error("the file adds no rule");

function decide(id, user) {
    const action = { id, lookup: () => undefined };
    const subject = { user, groups: [], local: false, active: false, isInGroup: () => false };
    for (const rule of rules) {
        const result = rule(action, subject);
        if (result !== undefined) return result;
    }
    return undefined;
}

const cases = [
    ["org.debian.pcsc-lite.access_pcsc", "oathkey", "yes"],
    ["org.debian.pcsc-lite.access_card", "oathkey", "yes"],
    ["org.debian.pcsc-lite.access_pcsc", "alice", undefined],
    ["org.debian.pcsc-lite.access_card", "nobody", undefined],
    ["org.debian.pcsc-lite.access_card", "root", undefined],
    ["org.freedesktop.login1.reboot", "oathkey", undefined],
    ["org.oathkey.create-token", "oathkey", undefined],
];
let failed = 0;
for (const [id, user, want] of cases) {
    const got = decide(id, user);
    if (got !== want) {
        console.error(`${id} for ${user}: ${got}, expected ${want}`);
        failed++;
    }
}
if (failed) process.exit(1);
console.log(`${cases.length} decisions as expected`);
