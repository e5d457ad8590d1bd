// Where the real captures of the shared test data are: `../shared/testdata` beside the
// repository as documented, wherever the clone sits; FLOWBUS_TESTDATA overrides it.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url))

/** The candidates in order: the override, beside this clone, then the workplace's fixed place. */
const candidates = [process.env.FLOWBUS_TESTDATA, join(repositoryRoot, '../shared/testdata'), '/work/shared/testdata'].filter(
  (d): d is string => d !== undefined && d !== '',
)

/** The shared test data folder (the first candidate that exists, else the documented place). */
export const testdataDir: string = candidates.find((d) => existsSync(d)) ?? join(repositoryRoot, '../shared/testdata')

/** Akvorado's captures: flow-decoder-netflow/, flow-decoder-sflow/, flow-decoder/, … */
export const akvoradoTestdata: string = join(testdataDir, 'akvorado')
