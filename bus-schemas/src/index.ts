export * from './subject.js'
