import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsDefined, IsIn, IsNotEmpty, IsObject, IsString, Matches, MaxLength, ValidateIf, ValidateNested } from 'class-validator';
import { DESTINATION_PRESETS, DestinationPreset } from '@app/sources';
import { IsSourceSlug } from './admin.dto';

/** PostgreSQL text cannot hold U+0000, and a secret with a control character is a paste gone wrong. */
const PrintableText = () => Matches(/^[^\u0000-\u001f\u007f]*$/, { message: '$property must not contain control characters' });

/** Optional, but not null: a field sent as null is refused, never stored as a null. */
const IsAbsentOr = () => ValidateIf((_, value) => value !== undefined);

export class DestinationBody {
  @ApiProperty({ enum: DESTINATION_PRESETS, example: 'segment-eu' })
  @IsIn(DESTINATION_PRESETS)
  preset: DestinationPreset;

  @ApiPropertyOptional({
    description: "The data plane's URL; required for rudderstack, jitsu and custom, optional (an override) for the Segment presets",
    example: 'https://hosted.rudderlabs.com',
  })
  @IsAbsentOr()
  @IsString()
  @MaxLength(2000)
  @PrintableText()
  host?: string;

  @ApiProperty({ description: 'The write key of the destination source; stored encrypted, never shown again' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1000)
  @PrintableText()
  writeKey: string;
}

/** On PATCH the write key may stay as it is. */
export class DestinationChange {
  @ApiProperty({ enum: DESTINATION_PRESETS, example: 'rudderstack' })
  @IsIn(DESTINATION_PRESETS)
  preset: DestinationPreset;

  @ApiPropertyOptional({ description: "The data plane's URL; required for rudderstack, jitsu and custom" })
  @IsAbsentOr()
  @IsString()
  @MaxLength(2000)
  @PrintableText()
  host?: string;

  @ApiPropertyOptional({ description: 'A new write key; the current one is kept when absent' })
  @IsAbsentOr()
  @IsString()
  @IsNotEmpty()
  @MaxLength(1000)
  @PrintableText()
  writeKey?: string;
}

export class MailjetKeysBody {
  @ApiProperty({ description: "The Mailjet account's API key (public part)" })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText()
  apiKey: string;

  @ApiProperty({ description: "The Mailjet account's secret key; stored encrypted, never shown again" })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText()
  apiSecret: string;
}

export class CreateSourceBody {
  @ApiProperty({ example: 'EU marketing' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText()
  name: string;

  @ApiProperty({ type: DestinationBody })
  @IsDefined({ message: 'destination is required: { "preset", "host"?, "writeKey" }' })
  @IsObject({ message: 'destination must be an object' })
  @ValidateNested()
  @Type(() => DestinationBody)
  destination: DestinationBody;

  @ApiPropertyOptional({ type: MailjetKeysBody })
  @IsAbsentOr()
  @IsObject({ message: 'mailjet must be an object' })
  @ValidateNested()
  @Type(() => MailjetKeysBody)
  mailjet?: MailjetKeysBody;
}

export class UpdateSourceBody {
  @ApiPropertyOptional()
  @IsAbsentOr()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText()
  name?: string;

  @ApiPropertyOptional({ type: DestinationChange })
  @IsAbsentOr()
  @IsObject({ message: 'destination must be an object' })
  @ValidateNested()
  @Type(() => DestinationChange)
  destination?: DestinationChange;

  @ApiPropertyOptional({ type: MailjetKeysBody, nullable: true, description: 'New keys, or null to remove them' })
  @ValidateIf((_, value) => value !== undefined && value !== null)
  @IsObject({ message: 'mailjet must be an object, or null to remove the keys' })
  @ValidateNested()
  @Type(() => MailjetKeysBody)
  mailjet?: MailjetKeysBody | null;

  @ApiPropertyOptional({ description: "true: events are stored but wait as queued; false: they are forwarded again" })
  @IsAbsentOr()
  @IsBoolean()
  paused?: boolean;
}

export class SlugParams {
  @ApiProperty({ example: 'k3v9x2m7q8w1z5ta' })
  @IsSourceSlug('slug')
  slug: string;
}
