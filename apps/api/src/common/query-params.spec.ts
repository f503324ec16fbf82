import { BadRequestException } from '@nestjs/common';
import { parseIntegerParam } from './query-params';

describe('parseIntegerParam', () => {
  it('parses decimal integers and applies the default', () => {
    expect(parseIntegerParam('42', 'limit')).toBe(42);
    expect(parseIntegerParam(undefined, 'limit', { default: 7 })).toBe(7);
  });

  it.each(['-1', 'abc', '1e3', '0x10', ' 5', '5.0', '99999999999999999', ['1', '2']])('refuses %p naming the parameter', (raw) => {
    expect(() => parseIntegerParam(raw, 'start')).toThrow(BadRequestException);
    expect(() => parseIntegerParam(raw, 'start')).toThrow(/"start"/);
  });

  it('enforces bounds and presence', () => {
    expect(() => parseIntegerParam('1001', 'limit', { max: 1000 })).toThrow(/at most 1000/);
    expect(() => parseIntegerParam('0', 'limit', { min: 1 })).toThrow(/at least 1/);
    expect(() => parseIntegerParam(undefined, 'index')).toThrow(/"index" is required/);
  });
});
