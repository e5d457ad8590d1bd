// The previous-period overlay compares a range with the calendar period that covers it: an hour,
// a day, a week, a month or a year, with room for ranges rounded outwards to whole steps.
import { describe, expect, it } from 'vitest'
import { previousPeriodOffset } from '../src/query/engine.js'

const HOUR = 3600
const DAY = 86_400

describe('previous period', () => {
  it.each([
    [15 * 60, HOUR],
    [HOUR, HOUR],
    [6 * HOUR, DAY],
    [DAY, DAY],
    // "last day" rounded outwards to 10-minute steps is still a day.
    [DAY + 20 * 60, DAY],
    [2 * DAY, 7 * DAY],
    [7 * DAY, 7 * DAY],
    [14 * DAY, 30 * DAY],
    [90 * DAY, 365 * DAY],
  ])('a range of %i s compares with %i s earlier', (range, offset) => {
    expect(previousPeriodOffset(range)).toBe(offset)
  })
})
