export * from './bus/transport.js'
