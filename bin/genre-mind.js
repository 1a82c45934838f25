#!/usr/bin/env node
// The CLI runs in this very process, its TypeScript compiled by tsx as it is imported, so an
// installed checkout needs no build step. Not in a child process: a signal sent to this PID (kill
// -TERM, a process manager stopping it) would end a wrapper while the child went on sending
// requests, storing answers and holding the run lock.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
await main(process.argv.slice(2));
