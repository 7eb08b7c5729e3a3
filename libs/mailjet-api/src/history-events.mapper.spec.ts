import { linkHashOf, parseMailjetBody, toEventRecord } from '@app/mailjet';
import { eventsOfHistory, knownEvents } from './history-events.mapper';

// Beyond 2^53: a MessageID that went through a JS number would come out as another one.
const MESSAGE = {
  ID: '1152921504606846977',
  UUID: 'a1b2c3',
  ContactAlt: 'api@mailjet.com',
  ContactID: '1152921504606846999',
  CampaignID: 42,
  CustomID: 'order-7',
};

describe('eventsOfHistory', () => {
  it('builds webhook-shaped events that the webhook parser takes as usable, with exact ids', () => {
    const events = eventsOfHistory(
      MESSAGE,
      [
        { EventAt: 1700000000, EventType: 'sent' },
        { EventAt: 1700000100, EventType: 'opened', Useragent: 'Mozilla' },
        { EventAt: 1700000200, EventType: 'clicked' },
        { EventAt: 1700000300, EventType: 'bounced', State: 'hard bounce', Comment: 'user unknown' },
        { EventAt: 1700000400, EventType: 'deferred' },
      ],
      [{ Url: 'https://example.com/a', ClickedAt: '2023-11-14T22:16:41Z' }],
    );
    expect(events.map((e) => e.event.type)).toEqual(['sent', 'open', 'click', 'bounce']);
    const records = events.map((e) => toEventRecord(parseMailjetBody(e.json)[0]));
    for (const record of records) {
      expect(record.invalidReason).toBeNull();
      expect(record.messageId).toBe(MESSAGE.ID);
      expect(record.email).toBe('api@mailjet.com');
    }
    expect(events[0].json).toContain('"MessageID":1152921504606846977');
    expect(events[0].json).toContain('"mj_contact_id":1152921504606846999');
    expect(JSON.parse(events[2].json).url).toBe('https://example.com/a');
    expect(events[2].event.link).toBe(linkHashOf('https://example.com/a'));
    expect(JSON.parse(events[3].json)).toMatchObject({ hard_bounce: true, comment: 'user unknown' });
  });

  it('gives each click the URL of the nearest click statistic, each statistic once', () => {
    const events = eventsOfHistory(
      MESSAGE,
      [
        { EventAt: 1700000500, EventType: 'clicked' },
        { EventAt: 1700000000, EventType: 'clicked' },
      ],
      [
        { Url: 'https://example.com/first', ClickedAt: new Date(1700000001 * 1000).toISOString() },
        { Url: 'https://example.com/second', ClickedAt: new Date(1700000499 * 1000).toISOString() },
      ],
    );
    expect(events.map((e) => e.event.link)).toEqual([linkHashOf('https://example.com/second'), linkHashOf('https://example.com/first')]);
  });
});

describe('knownEvents', () => {
  const stored = [
    { messageId: '1', type: 'open', time: 100, link: null },
    { messageId: '1', type: 'click', time: 200, link: 'a' },
  ];

  it('matches the same message and type within the tolerance, clicks on their URL too', () => {
    const candidates = [
      { messageId: '1', type: 'open', time: 101, link: null }, // 1 s off: the same event
      { messageId: '1', type: 'open', time: 104, link: null }, // 4 s off: another open
      { messageId: '1', type: 'click', time: 200, link: 'b' }, // another link
      { messageId: '1', type: 'click', time: 200, link: 'a' },
      { messageId: '2', type: 'open', time: 100, link: null },
    ];
    expect(knownEvents(candidates, stored, 2)).toEqual([true, false, false, true, false]);
  });

  it('lets one stored event account for one backfilled event only', () => {
    const twice = [
      { messageId: '1', type: 'open', time: 100, link: null },
      { messageId: '1', type: 'open', time: 101, link: null },
    ];
    expect(knownEvents(twice, stored, 2)).toEqual([true, false]);
  });
});
