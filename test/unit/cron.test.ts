import { describe, expect, it } from 'vitest';
import { cronExpression, type CronFields } from '../../src/domain/cron';
import { expectBackupError } from './expect-backup-error';

/** The global default of the original sample data: every night at 03:00. */
function fields(overrides: Partial<CronFields> = {}): CronFields {
  return { minute: ['0'], hour: ['3'], day: ['*'], month: ['*'], dayOfWeek: ['*'], ...overrides };
}

const ATTRIBUTE: Record<keyof CronFields, string> = {
  minute: 'sstCronMinute',
  hour: 'sstCronHour',
  day: 'sstCronDay',
  month: 'sstCronMonth',
  dayOfWeek: 'sstCronDayOfWeek',
};

describe('cronExpression: building the expression', () => {
  it('builds `0 3 * * *` from single values in the order minute, hour, day, month, day of week', () => {
    expect(cronExpression(fields())).toBe('0 3 * * *');
  });

  it('puts every field in its own position', () => {
    expect(cronExpression({ minute: ['5'], hour: ['4'], day: ['3'], month: ['2'], dayOfWeek: ['1'] })).toBe(
      '5 4 3 2 1',
    );
  });

  it('joins the values of a multi-valued attribute with a comma, keeping their order', () => {
    expect(cronExpression(fields({ minute: ['30', '0'], hour: ['1', '13'] }))).toBe('30,0 1,13 * * *');
  });

  it('keeps values that already contain commas as a list', () => {
    expect(cronExpression(fields({ minute: ['0,30'], dayOfWeek: ['1,3', '5'] }))).toBe('0,30 3 * * 1,3,5');
  });

  it('trims blanks around list items', () => {
    expect(cronExpression(fields({ minute: [' 0 , 30 '], hour: ['3 '] }))).toBe('0,30 3 * * *');
  });

  it('accepts ranges', () => {
    expect(cronExpression(fields({ hour: ['1-5'], dayOfWeek: ['1-5'] }))).toBe('0 1-5 * * 1-5');
  });

  it('accepts a range whose ends are equal', () => {
    expect(cronExpression(fields({ day: ['15-15'] }))).toBe('0 3 15-15 * *');
  });

  it('accepts a step over `*`', () => {
    expect(cronExpression(fields({ minute: ['*/15'] }))).toBe('*/15 3 * * *');
  });

  it('accepts a step over a range', () => {
    expect(cronExpression(fields({ hour: ['1-5/2'] }))).toBe('0 1-5/2 * * *');
  });

  it('accepts a mix of values, ranges and steps in one field', () => {
    expect(cronExpression(fields({ minute: ['0', '10-20/5', '*/45'] }))).toBe('0,10-20/5,*/45 3 * * *');
  });

  it.each(['0', '7', '0-7', '6,7'])('accepts day of week %s (0 and 7 are both Sunday)', (dow) => {
    expect(cronExpression(fields({ dayOfWeek: [dow] }))).toBe(`0 3 * * ${dow}`);
  });

  it.each([
    ['minute', '0', '0 3 * * *'],
    ['minute', '59', '59 3 * * *'],
    ['hour', '0', '0 0 * * *'],
    ['hour', '23', '0 23 * * *'],
    ['day', '1', '0 3 1 * *'],
    ['day', '31', '0 3 31 * *'],
    ['month', '1', '0 3 * 1 *'],
    ['month', '12', '0 3 * 12 *'],
  ] as const)('accepts the boundary %s value %s', (name, value, expected) => {
    expect(cronExpression(fields({ [name]: [value] }))).toBe(expected);
  });
});

describe('cronExpression: refusing values out of range', () => {
  it.each([
    ['minute', '60'],
    ['hour', '24'],
    ['day', '0'],
    ['day', '32'],
    ['month', '0'],
    ['month', '13'],
    ['dayOfWeek', '8'],
  ] as const)('refuses %s %s with code 39, naming the attribute, the value and the range', (name, value) => {
    const error = expectBackupError(() => cronExpression(fields({ [name]: [value] })), 39);
    expect(error.message).toContain(ATTRIBUTE[name]);
    expect(error.message).toContain(`"${value}"`);
  });

  it('states the allowed range in the message', () => {
    expectBackupError(
      () => cronExpression(fields({ minute: ['60'] })),
      39,
      'sstCronMinute: "60" is not a valid value (0–59, *, ranges, lists, steps)',
    );
  });

  it.each([
    ['hour', 'sstCronHour: "24" is not a valid value (0–23', '24'],
    ['day', 'sstCronDay: "32" is not a valid value (1–31', '32'],
    ['month', 'sstCronMonth: "13" is not a valid value (1–12', '13'],
    ['dayOfWeek', 'sstCronDayOfWeek: "8" is not a valid value (0–7', '8'],
  ] as const)('states the range of %s', (name, start, value) => {
    const error = expectBackupError(() => cronExpression(fields({ [name]: [value] })), 39);
    expect(error.message.startsWith(start)).toBe(true);
  });

  it('refuses a range whose upper end is out of range', () => {
    expectBackupError(() => cronExpression(fields({ hour: ['20-24'] })), 39, /^sstCronHour: "20-24"/);
  });

  it('refuses a range whose lower end is out of range', () => {
    expectBackupError(() => cronExpression(fields({ day: ['0-5'] })), 39, /^sstCronDay: "0-5"/);
  });

  it('refuses an out-of-range value hidden in a comma-separated value', () => {
    expectBackupError(() => cronExpression(fields({ minute: ['0,75'] })), 39, /^sstCronMinute: "75"/);
  });

  it('refuses an out-of-range value in a later value of a multi-valued attribute', () => {
    expectBackupError(() => cronExpression(fields({ month: ['1', '13'] })), 39, /^sstCronMonth: "13"/);
  });
});

describe('cronExpression: refusing malformed values', () => {
  it('refuses a reversed range', () => {
    expectBackupError(() => cronExpression(fields({ dayOfWeek: ['5-1'] })), 39, /^sstCronDayOfWeek: "5-1"/);
  });

  it('refuses a reversed range with a step', () => {
    expectBackupError(() => cronExpression(fields({ hour: ['5-1/2'] })), 39, /^sstCronHour: "5-1\/2"/);
  });

  it('refuses a zero step over `*`', () => {
    expectBackupError(() => cronExpression(fields({ minute: ['*/0'] })), 39, /^sstCronMinute: "\*\/0"/);
  });

  it('refuses a zero step over a range', () => {
    expectBackupError(() => cronExpression(fields({ hour: ['1-5/0'] })), 39, /^sstCronHour: "1-5\/0"/);
  });

  it.each([
    ['a letter', 'a'],
    ['a semicolon list', '1;2'],
    ['a name of a day', 'MON'],
    ['a question mark', '?'],
    ['a negative number', '-1'],
    ['a decimal number', '1.5'],
    ['a signed number', '+5'],
    ['a range open at the top', '1-'],
    ['a range starting at `*`', '*-5'],
    ['a step without a value', '*/'],
    ['a step that is not a number', '*/x'],
    ['two steps', '*/2/3'],
    ['a blank inside a value', '1 2'],
  ])('refuses %s with code 39', (_what, value) => {
    const error = expectBackupError(() => cronExpression(fields({ minute: [value] })), 39);
    expect(error.message).toBe(
      `sstCronMinute: ${JSON.stringify(value)} is not a valid value (0–59, *, ranges, lists, steps)`,
    );
  });

  it('names the attribute of the field that holds the garbage', () => {
    expectBackupError(() => cronExpression(fields({ month: ['a'] })), 39, /^sstCronMonth: "a"/);
  });
});

describe('cronExpression: missing fields', () => {
  it.each(Object.entries(ATTRIBUTE) as Array<[keyof CronFields, string]>)(
    'refuses a %s field without values with code 2, naming %s',
    (name, attribute) => {
      expectBackupError(() => cronExpression(fields({ [name]: [] })), 2, `${attribute} is missing`);
    },
  );

  it('refuses an empty value with code 2', () => {
    expectBackupError(() => cronExpression(fields({ hour: [''] })), 2, 'sstCronHour is missing');
  });

  it('refuses a value of only blanks with code 2', () => {
    expectBackupError(() => cronExpression(fields({ day: ['  '] })), 2, 'sstCronDay is missing');
  });

  it('refuses an empty value next to a good one', () => {
    expectBackupError(() => cronExpression(fields({ month: ['1', ''] })), 2, 'sstCronMonth is missing');
  });

  it('reports the first bad field in the order minute, hour, day, month, day of week', () => {
    expectBackupError(() => cronExpression(fields({ hour: [], month: ['13'] })), 2, 'sstCronHour is missing');
    expectBackupError(() => cronExpression(fields({ day: ['32'], dayOfWeek: [] })), 39, /^sstCronDay: "32"/);
  });
});
