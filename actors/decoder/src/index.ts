// Public surface of @flowbus/decoder (filled in as the actor is built).
export * from './protocol.js'
