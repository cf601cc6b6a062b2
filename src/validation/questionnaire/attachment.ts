import { createHash } from 'node:crypto';
import type { Attachment, QuestionnaireItem } from '@medplum/fhirtypes';
import { EXT, extensionsOf, type AnswerCheck } from './answers';

/**
 * The checks of an attachment item's answers, as the HL7 validator makes them: a content type the item
 * allows (mimeType; parameters such as `;charset=` aside), no larger than its maxSize, and `size` and
 * `hash` that agree with the `data` sent (R4 Attachment: size in bytes, hash the base64 SHA-1 of the data).
 */
export function compileAttachmentChecks(item: QuestionnaireItem): AnswerCheck[] {
  if (item.type !== 'attachment') {
    return [];
  }
  const checks: AnswerCheck[] = [consistent];
  const mimeTypes = extensionsOf(item, EXT.mimeType).flatMap((e) => (e.valueCode ? [e.valueCode] : []));
  if (mimeTypes.length) {
    const allowed = new Set(mimeTypes.map(mediaType));
    checks.push((answer) => {
      const attachment = answer.valueAttachment;
      if (!attachment) {
        return undefined;
      }
      if (attachment.contentType === undefined) {
        return `The attachment has no contentType; it must be one of ${mimeTypes.join(', ')}`;
      }
      return allowed.has(mediaType(attachment.contentType))
        ? undefined
        : `The attachment type ${attachment.contentType} is not allowed; use ${mimeTypes.join(', ')}`;
    });
  }
  const maxSize = extensionsOf(item, EXT.maxSize)[0]?.valueDecimal;
  if (maxSize !== undefined) {
    checks.push((answer) => {
      const attachment = answer.valueAttachment;
      const size = attachment && (bytesOf(attachment)?.length ?? attachment.size);
      return size !== undefined && size > maxSize
        ? `The attachment is ${size} bytes; at most ${maxSize} are allowed`
        : undefined;
    });
  }
  return checks;
}

/** `size` and `hash`, where given beside `data`, must be those of the data. */
const consistent: AnswerCheck = (answer) => {
  const attachment = answer.valueAttachment;
  const bytes = attachment && bytesOf(attachment);
  if (!attachment || !bytes) {
    return undefined;
  }
  if (attachment.size !== undefined && attachment.size !== bytes.length) {
    return `The attachment's size is given as ${attachment.size} bytes, but its data has ${bytes.length}`;
  }
  if (
    attachment.hash !== undefined &&
    attachment.hash !== createHash('sha1').update(bytes).digest('base64')
  ) {
    return "The attachment's hash is not the SHA-1 of its data";
  }
  return undefined;
};

function bytesOf(attachment: Attachment): Buffer | undefined {
  return attachment.data === undefined ? undefined : Buffer.from(attachment.data, 'base64');
}

/** `image/png; charset=x` → `image/png`: a type's parameters do not change what it is. */
function mediaType(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}
