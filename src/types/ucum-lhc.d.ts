/** The part of @lhncbc/ucum-lhc (which ships no type declarations) that the server uses. */
declare module '@lhncbc/ucum-lhc' {
  export interface UcumConversion {
    status: 'succeeded' | 'failed' | 'error';
    toVal: number | null;
    msg: string[];
  }
  export class UcumLhcUtils {
    static getInstance(): UcumLhcUtils;
    convertUnitTo(fromUnitCode: string, fromVal: number, toUnitCode: string): UcumConversion;
  }
}
