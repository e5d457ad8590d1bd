// Public surface of @flowbus/orchestrator (filled in as the actor is built).
export {}
