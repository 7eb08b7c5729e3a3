import { Logger } from '@nestjs/common';
import { AppConfig, loadEnvironment } from '@app/config';
import { AnalystViewSettingsRepository } from './analyst-view-settings.repository';
import { AnalystViewSettings } from './analyst-view-settings.service';

describe('AnalystViewSettings', () => {
  const config = new AppConfig(loadEnvironment({ USER_ID_PAYLOAD_KEY: 'accountRef' }, []));
  let warn: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => warn.mockRestore());

  function settingsWith(outcome: Awaited<ReturnType<AnalystViewSettingsRepository['writeUserIdPayloadKey']>> | Error) {
    const write = jest.fn(async () => {
      if (outcome instanceof Error) throw outcome;
      return outcome;
    });
    const settings = new AnalystViewSettings({ writeUserIdPayloadKey: write } as unknown as AnalystViewSettingsRepository, config);
    return { settings, write };
  }

  it('writes the configured key at start, and says so when it replaced another', async () => {
    const { settings, write } = settingsWith({ changed: true, previous: 'userId' });
    await settings.onApplicationBootstrap();
    expect(write).toHaveBeenCalledWith('accountRef');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('USER_ID_PAYLOAD_KEY is now "accountRef" for the mailjet.* views (it was "userId")'));
  });

  it('says nothing when the key was already the one stored', async () => {
    const { settings } = settingsWith({ changed: false });
    await settings.onApplicationBootstrap();
    expect(warn).not.toHaveBeenCalled();
  });

  it('stops the start on an error that is not an outage (a missing table: migrations not applied)', async () => {
    const { settings } = settingsWith(Object.assign(new Error('relation "analyst_view_settings" does not exist'), { code: '42P01' }));
    await expect(settings.onApplicationBootstrap()).rejects.toThrow(/analyst_view_settings/);
  });

  it('starts anyway while PostgreSQL is away, and tries again later', async () => {
    jest.useFakeTimers();
    try {
      const { settings, write } = settingsWith(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));
      await settings.onApplicationBootstrap();
      expect(write).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(5_000);
      expect(write).toHaveBeenCalledTimes(2);
      settings.onApplicationShutdown();
      await jest.advanceTimersByTimeAsync(60_000);
      expect(write).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
    }
  });
});
