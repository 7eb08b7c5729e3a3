import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsNotEmpty, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { DESTINATION_PRESETS, DestinationPreset } from '@app/sources';

/** PostgreSQL text cannot hold U+0000, and a secret with a control character is a paste gone wrong. */
const PrintableText = (property: string) => Matches(/^[^\u0000-\u001f\u007f]*$/, { message: `${property} must not contain control characters` });

export class DestinationBody {
  @ApiProperty({ enum: DESTINATION_PRESETS, example: 'segment-eu' })
  @IsIn(DESTINATION_PRESETS)
  preset: DestinationPreset;

  @ApiPropertyOptional({
    description: "The data plane's URL; required for rudderstack, jitsu and custom, optional (an override) for the Segment presets",
    example: 'https://hosted.rudderlabs.com',
  })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  @PrintableText('destination.host')
  host?: string;

  @ApiProperty({ description: 'The write key of the destination source; stored encrypted, never shown again' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1000)
  @PrintableText('destination.writeKey')
  writeKey: string;
}

/** On PATCH the write key may stay as it is. */
export class DestinationChange {
  @ApiProperty({ enum: DESTINATION_PRESETS, example: 'rudderstack' })
  @IsIn(DESTINATION_PRESETS)
  preset: DestinationPreset;

  @ApiPropertyOptional({ description: "The data plane's URL; required for rudderstack, jitsu and custom" })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  @PrintableText('destination.host')
  host?: string;

  @ApiPropertyOptional({ description: 'A new write key; the current one is kept when absent' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(1000)
  @PrintableText('destination.writeKey')
  writeKey?: string;
}

export class MailjetKeysBody {
  @ApiProperty({ description: "The Mailjet account's API key (public part)" })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText('mailjet.apiKey')
  apiKey: string;

  @ApiProperty({ description: "The Mailjet account's secret key; stored encrypted, never shown again" })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText('mailjet.apiSecret')
  apiSecret: string;
}

export class CreateSourceBody {
  @ApiProperty({ example: 'EU marketing' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText('name')
  name: string;

  @ApiProperty({ type: DestinationBody })
  @ValidateNested()
  @Type(() => DestinationBody)
  destination: DestinationBody;

  @ApiPropertyOptional({ type: MailjetKeysBody })
  @IsOptional()
  @ValidateNested()
  @Type(() => MailjetKeysBody)
  mailjet?: MailjetKeysBody;
}

export class UpdateSourceBody {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @PrintableText('name')
  name?: string;

  @ApiPropertyOptional({ type: DestinationChange })
  @IsOptional()
  @ValidateNested()
  @Type(() => DestinationChange)
  destination?: DestinationChange;

  @ApiPropertyOptional({ type: MailjetKeysBody })
  @IsOptional()
  @ValidateNested()
  @Type(() => MailjetKeysBody)
  mailjet?: MailjetKeysBody;

  @ApiPropertyOptional({ description: "true: events are stored but wait as queued; false: they are forwarded again" })
  @IsOptional()
  @IsBoolean()
  paused?: boolean;
}

/** A slug as POST /admin/sources makes them, or `default`. */
export const SLUG_PATTERN = /^[a-z0-9-]{1,64}$/;

export class SlugParams {
  @ApiProperty({ example: 'k3v9x2m7q8w1z5ta' })
  @Matches(SLUG_PATTERN, { message: 'slug must be the slug of a source (lower-case letters, digits and -)' })
  slug: string;
}
