<#ftl strip_whitespace=true>
<#-- mlconnector-stamp v1: the job exists for its markAsExported action; the file only lists the IDs. -->
<#list reports as report>
<#assign id = (report.reportID)!"">
<#if id?is_number>${id?c}<#else>${id?string}</#if>${"\n"}<#t>
</#list>
