// Public surface of @flowbus/receiver (filled in as the actor is built).
export {}
