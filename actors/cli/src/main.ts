export const main = (argv: string[]): void => { console.log("flowbus", argv) }
